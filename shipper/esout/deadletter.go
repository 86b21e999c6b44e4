package esout

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// deadLetterPriority is the dead-letter template's priority: above Elastic's
// built-in logs-*-* (100) and distinct from the shipper's own templates, so
// that overlapping patterns never tie.
const deadLetterPriority = 250

// deadLetterTemplateName is the name of the dead-letter index template.
func (c Config) deadLetterTemplateName() string { return "heartwood-" + c.DeadLetter.Dataset }

// deadLetterTemplate is the composable index template for the dead-letter
// data stream. Mappings are closed (dynamic false): the raw record and the
// rejected document are kept verbatim in _source only, so no dead letter
// can make the mapping explode or conflict.
func (c Config) deadLetterTemplate() []byte {
	tpl := map[string]any{
		"index_patterns": []string{"logs-" + c.DeadLetter.Dataset + "-*"},
		"data_stream":    map[string]any{},
		"priority":       deadLetterPriority,
		"_meta":          map[string]any{"managed_by": "heartwood", "description": "heartwood shipper dead letters"},
		"template": map[string]any{
			"settings": map[string]any{"index": map[string]any{"auto_expand_replicas": "0-1"}},
			"mappings": map[string]any{
				"dynamic": false,
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date_nanos"},
					"message":    map[string]any{"type": "text"},
					"event": map[string]any{"properties": map[string]any{
						"kind":     map[string]any{"type": "keyword"},
						"original": map[string]any{"type": "keyword", "index": false, "doc_values": false},
					}},
					"error": map[string]any{"properties": map[string]any{
						"type":    map[string]any{"type": "keyword"},
						"message": map[string]any{"type": "text"},
					}},
					"heartwood": map[string]any{"properties": map[string]any{
						"dead_letter": map[string]any{"properties": map[string]any{
							"index":     map[string]any{"type": "keyword"},
							"id":        map[string]any{"type": "keyword"},
							"status":    map[string]any{"type": "integer"},
							"document":  map[string]any{"type": "keyword", "index": false, "doc_values": false},
							"truncated": map[string]any{"type": "boolean"},
						}},
					}},
					"data_stream": map[string]any{"properties": map[string]any{
						"type":      map[string]any{"type": "keyword"},
						"dataset":   map[string]any{"type": "keyword"},
						"namespace": map[string]any{"type": "keyword"},
					}},
				},
			},
		},
	}
	b, err := json.Marshal(tpl)
	if err != nil {
		panic(fmt.Sprintf("esout: marshal dead-letter template: %v", err)) // static data
	}
	return b
}

// deadLetter is the replacement document written for a permanently
// rejected one.
type deadLetter struct {
	index string
	id    string
	body  []byte
}

// deadLetterID derives the dead letter's _id from the original index and
// _id (or, without an _id, the body), so that a replay is a no-op.
func deadLetterID(index, id string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(index))
	h.Write([]byte{0})
	if id != "" {
		h.Write([]byte(id))
	} else {
		h.Write([]byte{1})
		h.Write(body)
	}
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0])[:20])
}

// maxDeadLetterField caps the raw record and the rejected document kept in
// a dead letter, so that a dead letter is never too large to write.
const maxDeadLetterField = 1 << 20

// truncate caps b at maxDeadLetterField bytes.
func truncate(b []byte) (string, bool) {
	if len(b) <= maxDeadLetterField {
		return string(b), false
	}
	return string(b[:maxDeadLetterField]), true
}

// newDeadLetter builds the dead letter for doc, rejected with status and
// the error errType/reason. Invalid UTF-8 in the raw record is replaced by
// U+FFFD (JSON strings cannot carry it).
func (c Config) newDeadLetter(doc *Doc, status int, errType, reason string, now time.Time) *deadLetter {
	original := doc.Raw
	if original == nil {
		original = doc.Body
	}
	type dsT struct {
		Type      string `json:"type"`
		Dataset   string `json:"dataset"`
		Namespace string `json:"namespace"`
	}
	type dlT struct {
		Index     string `json:"index"`
		ID        string `json:"id,omitempty"`
		Status    int    `json:"status,omitempty"`
		Document  string `json:"document"`
		Truncated bool   `json:"truncated,omitempty"`
	}
	v := struct {
		Timestamp string `json:"@timestamp"`
		Message   string `json:"message"`
		Event     struct {
			Kind     string `json:"kind"`
			Original string `json:"original"`
		} `json:"event"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		Heartwood struct {
			DeadLetter dlT `json:"dead_letter"`
		} `json:"heartwood"`
		DataStream dsT `json:"data_stream"`
	}{
		Timestamp: now.UTC().Format(time.RFC3339Nano),
		Message:   errType + ": " + reason,
	}
	v.Event.Kind = "pipeline_error"
	var cutOrig, cutDoc bool
	v.Event.Original, cutOrig = truncate(original)
	v.Error.Type = errType
	v.Error.Message = reason
	v.Heartwood.DeadLetter = dlT{Index: doc.Index, ID: doc.ID, Status: status}
	v.Heartwood.DeadLetter.Document, cutDoc = truncate(doc.Body)
	v.Heartwood.DeadLetter.Truncated = cutOrig || cutDoc
	v.DataStream = dsT{Type: "logs", Dataset: c.DeadLetter.Dataset, Namespace: c.DeadLetter.Namespace}
	body, err := json.Marshal(&v)
	if err != nil {
		panic(fmt.Sprintf("esout: marshal dead letter: %v", err)) // strings only
	}
	return &deadLetter{index: c.deadLetterStream(), id: deadLetterID(doc.Index, doc.ID, doc.Body), body: body}
}

// reason returns a dead letter's error message, for logs.
func (d *deadLetter) reason() string {
	var v struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(d.body, &v)
	return v.Message
}

// installDeadLetterTemplate puts the dead-letter index template, retrying
// retryable failures. If Elasticsearch rejects it permanently, dead
// letters are still written (to whatever template matches), loudly.
func (w *Writer) installDeadLetterTemplate(ctx context.Context) {
	name := w.cfg.deadLetterTemplateName()
	body := w.cfg.deadLetterTemplate()
	for attempt := 0; ; attempt++ {
		err := w.PutIndexTemplate(ctx, name, body)
		if err == nil {
			w.log.Info("dead-letter index template installed", "template", name, "data_stream", w.cfg.deadLetterStream())
			w.dlOnce.Do(func() { close(w.dlReady) })
			return
		}
		var se *StatusError
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests {
			w.log.Error("dead-letter index template rejected; dead letters go to the data stream without it", "template", name, "error", err)
			w.dlOnce.Do(func() { close(w.dlReady) })
			return
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("installing dead-letter index template failed, retrying", "template", name, "attempt", attempt+1, "error", err)
		if !w.sleep(ctx, attempt) {
			return
		}
	}
}
