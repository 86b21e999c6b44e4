package consulclient

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestTokenFileIsReReadWhenItChanges(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Consul-Token"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`"127.0.0.1:8300"`))
	}))
	defer srv.Close()

	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Addr: srv.URL, Token: "ignored-when-file-set", TokenFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status().Leader(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Make sure the modification time moves even on coarse filesystems.
	future := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(file, future, future); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status().Leader(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"first", "second-token"}
	if len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("tokens sent = %q, want %q", seen, want)
	}
}

func TestStaticTokenAndMissingFile(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Consul-Token")
		_, _ = w.Write([]byte(`""`))
	}))
	defer srv.Close()
	c, err := New(Options{Addr: srv.URL, Token: "static"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status().Leader(); err != nil {
		t.Fatal(err)
	}
	if got != "static" {
		t.Fatalf("token = %q, want static", got)
	}
	if _, err := New(Options{Addr: srv.URL, TokenFile: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Fatal("New with a missing token file succeeded, want an error")
	}
}
