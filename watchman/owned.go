package watchman

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/heartwood-ops/heartwood/internal/atomicfile"

	"github.com/prometheus/client_golang/prometheus"
)

// OwnedFileName is the file in the data directory that lists the containers
// the watchman paused or stopped, so that after a restart it wakes those and
// only those.
const OwnedFileName = "watchman-owned.json"

// Actions recorded in the owned file.
const (
	ownedPause = "pause"
	ownedStop  = "stop"
)

// ownedRecord is one container the watchman paused or stopped.
type ownedRecord struct {
	ID          string    `json:"id"`
	Action      string    `json:"action"`
	Since       time.Time `json:"since"`
	Maintenance bool      `json:"maintenance"`
}

// ownedFile is the owned file's content.
type ownedFile struct {
	Version    int           `json:"version"`
	Containers []ownedRecord `json:"containers"`
}

const ownedFileVersion = 1

// maxOwnedFileSize bounds what is read from the owned file.
const maxOwnedFileSize = 4 << 20

// parseOwnedFile parses the owned file. Any deviation from the format is
// an error: the caller quarantines the file rather than guess.
func parseOwnedFile(b []byte) (map[string]ownedRecord, error) {
	if len(b) > maxOwnedFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxOwnedFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f ownedFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if f.Version != ownedFileVersion {
		return nil, fmt.Errorf("unknown version %d", f.Version)
	}
	out := make(map[string]ownedRecord, len(f.Containers))
	for i, r := range f.Containers {
		if !validContainerID(r.ID) {
			return nil, fmt.Errorf("containers[%d]: invalid id %q", i, r.ID)
		}
		if r.Action != ownedPause && r.Action != ownedStop {
			return nil, fmt.Errorf("containers[%d]: invalid action %q", i, r.Action)
		}
		if _, dup := out[r.ID]; dup {
			return nil, fmt.Errorf("containers[%d]: duplicate id %s", i, r.ID)
		}
		out[r.ID] = r
	}
	return out, nil
}

// validContainerID accepts what Docker uses as container IDs (64 hex
// digits) and the shorter alphanumeric IDs of other engines and tests.
func validContainerID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ownedStore keeps the owned file. With no data directory it keeps
// nothing: the watchman then forgets what it paused when it restarts and
// treats every paused container as paused by someone else.
type ownedStore struct {
	path   string // "" without a data directory
	log    *slog.Logger
	errs   *prometheus.CounterVec
	loaded map[string]ownedRecord // the file's content at start, until the first snapshot is applied
	last   []byte                 // what was last written
}

// openOwnedStore reads the owned file. A file that cannot be parsed is
// renamed aside (quarantined), reported, and treated as empty.
func openOwnedStore(dir string, log *slog.Logger, errs *prometheus.CounterVec) *ownedStore {
	s := &ownedStore{log: log, errs: errs}
	if dir == "" {
		return s
	}
	s.path = filepath.Join(dir, OwnedFileName)
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s
	case err != nil:
		errs.WithLabelValues("read").Inc()
		log.Error("cannot read the record of paused containers; paused containers are treated as paused by someone else", "path", s.path, "err", err)
		return s
	}
	recs, err := parseOwnedFile(b)
	if err != nil {
		q := s.path + ".corrupt-" + strconv.FormatInt(time.Now().UnixNano(), 10)
		errs.WithLabelValues("quarantined").Inc()
		if rerr := os.Rename(s.path, q); rerr != nil {
			log.Error("record of paused containers is unreadable and could not be moved aside", "path", s.path, "err", err, "rename_err", rerr)
		} else {
			log.Error("record of paused containers is unreadable; moved aside, paused containers are treated as paused by someone else", "path", s.path, "quarantined_as", q, "err", err)
		}
		return s
	}
	s.loaded = recs
	s.last = b
	return s
}

// restored returns what the file said about id when the watchman started,
// while the first inventory snapshot is applied.
func (s *ownedStore) restored(id string, snapshot bool) (ownedRecord, bool) {
	if !snapshot || s.loaded == nil {
		return ownedRecord{}, false
	}
	r, ok := s.loaded[id]
	return r, ok
}

// forgetRestored ends the restore: from now on only what this process
// does counts.
func (s *ownedStore) forgetRestored() { s.loaded = nil }

// save writes recs atomically (temporary file, fsync, rename) if they
// differ from what was last written.
func (s *ownedStore) save(recs []ownedRecord) error {
	if s.path == "" {
		return nil
	}
	slices.SortFunc(recs, func(a, b ownedRecord) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	b, err := json.MarshalIndent(ownedFile{Version: ownedFileVersion, Containers: recs}, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if bytes.Equal(b, s.last) {
		return nil
	}
	// A data directory that does not exist yet is made, as the shipper's
	// checkpoint store does, rather than failing every write.
	err = os.MkdirAll(filepath.Dir(s.path), 0o700)
	if err == nil {
		err = atomicfile.Write(s.path, b)
	}
	if err != nil {
		s.errs.WithLabelValues("write").Inc()
		return err
	}
	s.last = b
	return nil
}

// persistLocked writes the set of containers the watchman paused or
// stopped, if it changed.
func (w *Watchman) persistLocked() {
	if w.owned.path == "" {
		return
	}
	var recs []ownedRecord
	for id, t := range w.ctrs {
		if !t.ours() {
			continue
		}
		a := ownedPause
		if t.stoppedByUs() {
			a = ownedStop
		}
		recs = append(recs, ownedRecord{ID: id, Action: a, Since: t.since.UTC(), Maintenance: t.maintenance})
	}
	if err := w.owned.save(recs); err != nil {
		w.log.Error("cannot record the paused containers; after a restart they are treated as paused by someone else", "path", w.owned.path, "err", err)
	}
}
