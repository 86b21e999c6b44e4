package esout

import "github.com/heartwood-ops/heartwood/shipper/jsonesc"

// appendCreate appends one bulk "create" entry: the action line
// {"create":{"_index":...,"_id":...}} and the source line, each followed by
// a newline. An empty id is left out (Elasticsearch then generates one).
// body must be a single line of JSON.
func appendCreate(dst []byte, index, id string, body []byte) []byte {
	dst = append(dst, `{"create":{"_index":`...)
	dst = jsonesc.AppendString(dst, index)
	if id != "" {
		dst = append(dst, `,"_id":`...)
		dst = jsonesc.AppendString(dst, id)
	}
	dst = append(dst, "}}\n"...)
	dst = append(dst, body...)
	return append(dst, '\n')
}

// createSize is the number of bytes appendCreate appends, assuming index and
// id need no escaping (an estimate otherwise).
func createSize(index, id string, body []byte) int {
	n := len(`{"create":{"_index":""}}`) + 2 + len(index) + len(body)
	if id != "" {
		n += len(`,"_id":""`) + len(id)
	}
	return n
}
