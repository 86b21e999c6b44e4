// Package checkpoint persists, per container, the position up to which the
// container's logs are acknowledged by Elasticsearch, so that a restarted
// shipper resumes exactly there.
//
// All entries live in one small JSON file that is rewritten atomically
// (temporary file, fsync, rename, fsync of the directory) at most once per
// flush interval, batching the many updates that acknowledgements make.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/heartwood-ops/heartwood/internal/atomicfile"
)

// FileID identifies one log file generation: its device and inode while it
// exists, and a fingerprint of its first line that survives inode reuse and
// truncation.
type FileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	FP  uint64 `json:"fp"`
}

// Entry is a container's checkpoint: reading resumes in file File at
// Offset, and the next event there gets sequence number Seq.
type Entry struct {
	File   FileID `json:"file"`
	Offset int64  `json:"offset"`
	Seq    uint64 `json:"seq"`
	// Time is the Docker time of the newest acknowledged line (Unix ns).
	Time int64 `json:"time,omitempty"`
}

// Store holds the checkpoints in memory and writes them to disk. It is safe
// for concurrent use.
type Store struct {
	path string

	quarantined *Quarantine

	mu      sync.Mutex
	entries map[string]Entry
	dirty   bool
	flushMu sync.Mutex // serialises writers of the file
}

// FileName is the name of the checkpoint file inside the data directory.
const FileName = "shipper-checkpoints.json"

type fileFormat struct {
	Version    int              `json:"version"`
	Containers map[string]Entry `json:"containers"`
}

// Quarantine describes a checkpoint file that could not be read and was
// moved aside.
type Quarantine struct {
	// Path is where the file now is.
	Path string
	// Err is why it could not be read.
	Err error
}

// Open loads the checkpoints from dir, creating dir if needed. A missing
// file is an empty store. A file that cannot be parsed (corrupt, or of an
// unknown version) is renamed to <name>.corrupt-<unix time> and the store
// starts empty: Quarantined reports it. Every container then starts from
// the beginning of the log files Docker still keeps; what was shipped
// before comes back with the same _ids and counts as duplicates (409).
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create checkpoint directory: %w", err)
	}
	s := &Store{path: filepath.Join(dir, FileName), entries: map[string]Entry{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	entries, perr := parse(b)
	if perr != nil {
		q := &Quarantine{Path: fmt.Sprintf("%s.corrupt-%d", s.path, time.Now().UnixNano()), Err: perr}
		if err := os.Rename(s.path, q.Path); err != nil {
			return nil, fmt.Errorf("checkpoints %s: %w; moving it aside failed: %w", s.path, perr, err)
		}
		s.quarantined = q
		return s, nil
	}
	s.entries = entries
	return s, nil
}

// parse decodes and checks a checkpoint file.
func parse(b []byte) (map[string]Entry, error) {
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("unsupported version %d", f.Version)
	}
	for id, e := range f.Containers {
		if id == "" || e.Offset < 0 {
			return nil, fmt.Errorf("invalid entry %q: offset %d", id, e.Offset)
		}
	}
	if f.Containers == nil {
		f.Containers = map[string]Entry{}
	}
	return f.Containers, nil
}

// Quarantined returns the checkpoint file Open moved aside, or nil.
func (s *Store) Quarantined() *Quarantine { return s.quarantined }

// Get returns a container's checkpoint.
func (s *Store) Get(container string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[container]
	return e, ok
}

// Set records a container's checkpoint (in memory until the next Flush).
func (s *Store) Set(container string, e Entry) {
	s.mu.Lock()
	if s.entries[container] != e {
		s.entries[container] = e
		s.dirty = true
	}
	s.mu.Unlock()
}

// Delete forgets a container.
func (s *Store) Delete(container string) {
	s.mu.Lock()
	if _, ok := s.entries[container]; ok {
		delete(s.entries, container)
		s.dirty = true
	}
	s.mu.Unlock()
}

// Containers returns the IDs that have a checkpoint.
func (s *Store) Containers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.entries))
	for id := range s.entries {
		ids = append(ids, id)
	}
	return ids
}

// Flush writes the checkpoints if they changed since the last write.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	snap := maps.Clone(s.entries)
	s.dirty = false
	s.mu.Unlock()
	b, err := json.Marshal(fileFormat{Version: 1, Containers: snap})
	if err != nil {
		return fmt.Errorf("encode checkpoints: %w", err)
	}
	if err := atomicfile.Write(s.path, b); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every interval until ctx ends, then flushes a last time.
// Write errors are reported to onErr and retried at the next tick.
func (s *Store) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.Flush(); err != nil && onErr != nil {
				onErr(err)
			}
			return
		case <-t.C:
			if err := s.Flush(); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
