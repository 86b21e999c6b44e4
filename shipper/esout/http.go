package esout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// sendKind classifies a bulk request's fate.
type sendKind int

const (
	sendItems    sendKind = iota // response parsed into s.items (unless allOK)
	sendRetry                    // retryable whole-request failure
	sendRejected                 // whole request rejected permanently (400, 413)
	sendAgain                    // resend at once (compression fallback)
)

type sendOutcome struct {
	kind    sendKind
	allOK   bool // sendItems: errors:false, every item succeeded
	err     error
	status  int
	errType string
	reason  string
}

// send encodes and sends one bulk request for pending.
func (w *Writer) send(ctx context.Context, s *sender, pending []*item) sendOutcome {
	compressed := w.cfg.Compression && !w.clientCompresses.Load()
	body := encode(s, pending, compressed)
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := newRequest(rctx, http.MethodPost, "/_bulk?filter_path="+bulkFilterPath, body)
	if err != nil {
		return sendOutcome{kind: sendRetry, err: err}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if compressed {
		req.Header.Set("Content-Encoding", "gzip")
	}
	start := time.Now()
	res, err := w.client.Perform(req)
	if compressed && req.ContentLength != int64(len(body)) {
		// The client compressed our gzip body again: let it compress.
		if res != nil {
			_ = res.Body.Close()
		}
		w.clientCompresses.Store(true)
		w.log.Warn("elasticsearch client compresses request bodies itself; leaving compression to it")
		return sendOutcome{kind: sendAgain}
	}
	w.m.requestBytes.Add(float64(len(body)))
	if err != nil {
		w.m.requests.WithLabelValues("error").Inc()
		err = fmt.Errorf("bulk request: %w", err)
		w.setReady(err)
		return sendOutcome{kind: sendRetry, err: err}
	}
	s.resp.Reset()
	_, err = s.resp.ReadFrom(res.Body)
	_ = res.Body.Close()
	w.m.latency.Observe(time.Since(start).Seconds())
	w.m.requests.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
	if err != nil {
		err = fmt.Errorf("bulk response: %w", err)
		w.setReady(err)
		return sendOutcome{kind: sendRetry, err: err}
	}
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		w.setReady(nil)
		resp, err := parseBulkResponse(s.resp.Bytes(), s.items)
		if resp.items != nil {
			s.items = resp.items // keep the (possibly grown) storage
		}
		if err == nil && !resp.allOK && len(resp.items) != len(pending) {
			err = fmt.Errorf("%w: %d items for %d documents", errSyntax, len(resp.items), len(pending))
		}
		if err != nil {
			w.log.Error("unusable bulk response, resending the request", "error", err)
			return sendOutcome{kind: sendRetry, err: err}
		}
		return sendOutcome{kind: sendItems, allOK: resp.allOK}
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
		w.setReady(nil)
		e := parseErrorBody(code, s.resp.Bytes())
		return sendOutcome{kind: sendRejected, status: code, errType: e.Type, reason: e.Reason}
	default:
		e := parseErrorBody(code, s.resp.Bytes())
		err := fmt.Errorf("bulk request: %w", e)
		w.setReady(err)
		return sendOutcome{kind: sendRetry, err: err}
	}
}

// encodeChunk is how much of a compressed request body is built before it
// is handed to the compressor, so that a sender never holds the whole
// uncompressed request (flush-bytes, 2 MiB by default) as well.
const encodeChunk = 32 << 10

// encode builds the bulk request body for pending in s's buffers: the
// NDJSON as is, or gzipped.
func encode(s *sender, pending []*item, compressed bool) []byte {
	s.raw = s.raw[:0]
	if compressed {
		s.zbuf.Reset()
		s.gz.Reset(&s.zbuf)
	}
	for _, it := range pending {
		index, id, body := it.target()
		s.raw = appendCreate(s.raw, index, id, body)
		if compressed && len(s.raw) >= encodeChunk {
			_, _ = s.gz.Write(s.raw) // writes to a bytes.Buffer do not fail
			s.raw = s.raw[:0]
		}
	}
	if !compressed {
		return s.raw
	}
	_, _ = s.gz.Write(s.raw)
	_ = s.gz.Close()
	return s.zbuf.Bytes()
}

func newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return req, nil
}

// StatusError is an Elasticsearch error response.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Type is the error type, e.g. illegal_argument_exception.
	Type string
	// Reason is the error message.
	Reason string
}

// Error returns the status, type and reason.
func (e *StatusError) Error() string {
	return fmt.Sprintf("elasticsearch status %d: %s: %s", e.Status, e.Type, e.Reason)
}

// parseErrorBody reads {"error":{"type":..,"reason":..},"status":N}.
func parseErrorBody(status int, body []byte) *StatusError {
	e := &StatusError{Status: status}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.Error) > 0 {
		var obj struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(v.Error, &obj) == nil {
			e.Type, e.Reason = obj.Type, obj.Reason
		} else {
			_ = json.Unmarshal(v.Error, &e.Reason)
		}
	}
	if e.Type == "" {
		e.Type = "http_" + strconv.Itoa(status)
	}
	if e.Reason == "" {
		const max = 512
		r := bytes.TrimSpace(body)
		if len(r) > max {
			r = r[:max]
		}
		e.Reason = string(r)
	}
	return e
}

// Do sends one request (path relative to the cluster, JSON body) with the
// writer's client and request timeout, and returns the answer's status and
// body (at most 8 MiB). A transport error also marks the writer not ready.
func (w *Writer) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := newRequest(rctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := w.client.Perform(req)
	if err != nil {
		w.setReady(err)
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err == nil {
		w.setReady(nil)
	}
	return res.StatusCode, out, err
}

// PutIndexTemplate creates or replaces the composable index template name
// (PUT _index_template/<name>); doing it again with the same body is a
// no-op. A rejection is returned as a *StatusError.
func (w *Writer) PutIndexTemplate(ctx context.Context, name string, body []byte) error {
	if name == "" {
		return errors.New("put index template: empty name")
	}
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := newRequest(rctx, http.MethodPut, "/_index_template/"+url.PathEscape(name), body)
	if err != nil {
		return fmt.Errorf("put index template %s: %w", name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := w.client.Perform(req)
	if err != nil {
		err = fmt.Errorf("put index template %s: %w", name, err)
		w.setReady(err)
		return err
	}
	defer res.Body.Close()
	resBody, err := io.ReadAll(res.Body)
	if err != nil {
		err = fmt.Errorf("put index template %s: read response: %w", name, err)
		w.setReady(err)
		return err
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		w.setReady(nil)
		return nil
	}
	se := parseErrorBody(res.StatusCode, resBody)
	err = fmt.Errorf("put index template %s: %w", name, se)
	if res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests {
		w.setReady(err)
	} else {
		w.setReady(nil)
	}
	return err
}
