package esout

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// poisonTransport panics on a bulk request that carries "poison", as a bug
// below the writer might, and passes everything else on.
type poisonTransport struct{ next http.RoundTripper }

func (p poisonTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.URL.Path == "/_bulk" {
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if bytes.Contains(b, []byte("poison")) {
			panic("poisoned request")
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return p.next.RoundTrip(r)
}

// TestWorkerPanicDeadLettersBatch: a panic while a bulk worker handles a
// batch does not crash the agent or stall the writer: the batch's
// documents are acknowledged as dead-lettered (lost, counted and logged)
// and later documents go through.
func TestWorkerPanicDeadLettersBatch(t *testing.T) {
	f := newFakeES(t)
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig()
	cfg.Compression = false
	w, reg := startWriter(t, cfg, srv.URL, elasticsearch.Config{Transport: poisonTransport{next: http.DefaultTransport}})
	ctx := context.Background()
	poison := newAcks(t, 1)
	if err := w.Write(ctx, []Doc{{Index: "logs-a-b", ID: "p1", Body: []byte(`{"message":"poison"}`), Token: 1}}, poison.ack); err != nil {
		t.Fatal(err)
	}
	poison.wait(t, 10*time.Second)
	if o := poison.get(1); o != DeadLettered {
		t.Fatalf("poisoned document ended %v, want dead-lettered", o)
	}
	if n := counter(t, reg, "heartwood_shipper_es_worker_panics_total"); n < 1 {
		t.Fatalf("worker panics counted %v, want at least 1", n)
	}
	good := newAcks(t, 1)
	if err := w.Write(ctx, []Doc{{Index: "logs-a-b", ID: "g1", Body: []byte(`{"message":"fine"}`), Token: 2}}, good.ack); err != nil {
		t.Fatal(err)
	}
	good.wait(t, 10*time.Second)
	if o := good.get(2); o != Delivered {
		t.Fatalf("document after the panic ended %v, want delivered", o)
	}
}
