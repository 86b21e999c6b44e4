package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Entry is one line of /proc/<pid>/cgroup: "hierarchy-ID:controllers:path".
type Entry struct {
	// Hierarchy is the hierarchy ID; 0 for the cgroup v2 unified hierarchy.
	Hierarchy int
	// Controllers are the v1 controllers bound to the hierarchy, including
	// named hierarchies such as "name=systemd"; empty for v2.
	Controllers []string
	// Path is the cgroup's path relative to the hierarchy's root.
	Path string
}

// ParseProcCgroup parses the contents of /proc/<pid>/cgroup.
func ParseProcCgroup(b []byte) ([]Entry, error) {
	var out []Entry
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		id, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return nil, fmt.Errorf("line %d: missing ':'", n+1)
		}
		ctrls, path, ok := bytes.Cut(rest, []byte{':'})
		if !ok {
			return nil, fmt.Errorf("line %d: missing second ':'", n+1)
		}
		h, err := strconv.Atoi(string(id))
		if err != nil || h < 0 {
			return nil, fmt.Errorf("line %d: bad hierarchy id %q", n+1, id)
		}
		if len(path) == 0 || path[0] != '/' {
			return nil, fmt.Errorf("line %d: path %q is not absolute", n+1, path)
		}
		e := Entry{Hierarchy: h, Path: string(path)}
		if len(ctrls) > 0 {
			e.Controllers = strings.Split(string(ctrls), ",")
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup entries")
	}
	return out, nil
}

// Paths are the directories holding one container's cgroup files.
type Paths struct {
	// V2 is the cgroup's directory in the v2 (unified) hierarchy: the only
	// one on a v2 host, the one holding PSI files on a hybrid host; empty if
	// there is none.
	V2 string
	// V1 maps each v1 controller (cpu, cpuacct, memory, blkio, pids,
	// freezer, ...) to the cgroup's directory in its hierarchy; empty on a
	// pure v2 host.
	V1 map[string]string
}

// Unified reports whether the container is on a pure cgroup v2 host.
func (p Paths) Unified() bool { return len(p.V1) == 0 && p.V2 != "" }

// Resolve maps the entries of /proc/<pid>/cgroup to directories under
// root (normally /sys/fs/cgroup, or the host's cgroup tree mounted into the
// agent's container). Paths relative to the reader's cgroup namespace
// (/../<id>) are resolved against the host tree (see lookupDir). A
// directory that does not exist is left out; an error is returned only if
// nothing at all could be found.
func Resolve(root string, entries []Entry) (Paths, error) {
	p := Paths{V1: map[string]string{}}
	pureV2 := exists(filepath.Join(root, "cgroup.controllers"))
	for _, e := range entries {
		if e.Hierarchy == 0 && len(e.Controllers) == 0 {
			base := filepath.Join(root, "unified")
			if pureV2 {
				base = root
			}
			if d, ok := lookupDir(base, e.Path); ok {
				p.V2 = d
			}
			continue
		}
		if pureV2 {
			continue
		}
		var real []string
		for _, c := range e.Controllers {
			if !strings.HasPrefix(c, "name=") {
				real = append(real, c)
			}
		}
		if len(real) == 0 {
			continue
		}
		candidates := []string{strings.Join(real, ",")}
		candidates = append(candidates, real...)
		for _, c := range real {
			for _, mnt := range candidates {
				if d, ok := lookupDir(filepath.Join(root, mnt), e.Path); ok {
					p.V1[c] = d
					break
				}
			}
		}
	}
	if len(p.V1) == 0 {
		p.V1 = nil
	}
	if p.V2 == "" && len(p.V1) == 0 {
		return Paths{}, fmt.Errorf("no cgroup directory found under %s: %w", root, os.ErrNotExist)
	}
	return p, nil
}

// maxNamespaceDepth bounds how deep below a hierarchy's root the common
// ancestor of a cgroup-namespace-relative path is looked for.
const maxNamespaceDepth = 4

// lookupDir finds the directory of cgroup path p in the hierarchy mounted at
// base. p is normally absolute in the hierarchy. When the reader runs in its
// own cgroup namespace (the agent in a container with a private cgroupns),
// the kernel shows other cgroups relative to the namespace's root instead:
// a sibling container's /docker/<id> reads as /../<id>. The namespace root
// is unknown from inside, so the part after the leading ".." components is
// looked up below each directory of the host hierarchy, nearest to the root
// first, and must match exactly one directory at that depth.
func lookupDir(base, p string) (string, bool) {
	rest, up := strings.CutPrefix(p, "/..")
	if !up || (rest != "" && rest[0] != '/') {
		d := filepath.Join(base, p)
		return d, exists(d)
	}
	for {
		r, more := strings.CutPrefix(rest, "/..")
		if !more || (r != "" && r[0] != '/') {
			break
		}
		rest = r
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return "", false // an ancestor of the namespace root: no container
	}
	for _, part := range strings.Split(rest, "/") {
		if part == "" || part == "." || part == ".." {
			return "", false
		}
	}
	pattern := base
	for range maxNamespaceDepth + 1 {
		matches, _ := filepath.Glob(filepath.Join(pattern, globEscape(rest)))
		var dirs []string
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				dirs = append(dirs, m)
			}
		}
		switch len(dirs) {
		case 1:
			return dirs[0], true
		case 0:
			pattern = filepath.Join(pattern, "*")
			continue
		}
		return "", false // ambiguous
	}
	return "", false
}

// globEscape quotes the metacharacters of filepath.Match in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ForPID reads <procRoot>/<pid>/cgroup and resolves it under cgroupRoot.
func ForPID(procRoot, cgroupRoot string, pid int) (Paths, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return Paths{}, fmt.Errorf("read cgroup of pid %d: %w", pid, err)
	}
	entries, err := ParseProcCgroup(b)
	if err != nil {
		return Paths{}, fmt.Errorf("parse cgroup of pid %d: %w", pid, err)
	}
	return Resolve(cgroupRoot, entries)
}

var containerIDRe = regexp.MustCompile(`(?:^|/)(?:docker-|docker/|libpod-|cri-containerd-)?([0-9a-f]{64})(?:\.scope)?(?:/|$)`)

// ContainerID extracts a 64-hex-digit container ID from a cgroup path of
// either driver: /docker/<id>, /system.slice/docker-<id>.scope, or a
// custom parent such as /mycgroup/<id>. It returns "" if there is none.
func ContainerID(path string) string {
	m := containerIDRe.FindAllStringSubmatch(path, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// ContainerIDOfPID returns the container ID of the cgroup a host process
// belongs to, or "" if it is not in a container.
func ContainerIDOfPID(procRoot string, pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", fmt.Errorf("read cgroup of pid %d: %w", pid, err)
	}
	entries, err := ParseProcCgroup(b)
	if err != nil {
		return "", fmt.Errorf("parse cgroup of pid %d: %w", pid, err)
	}
	// Prefer the unified hierarchy, then any v1 hierarchy.
	for _, e := range entries {
		if e.Hierarchy == 0 {
			if id := ContainerID(e.Path); id != "" {
				return id, nil
			}
		}
	}
	for _, e := range entries {
		if id := ContainerID(e.Path); id != "" {
			return id, nil
		}
	}
	return "", nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
