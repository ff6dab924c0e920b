package cdc

import "errors"

// ErrEndOfStream is returned by Next of a finite Source (a snapshot of
// existing rows) once it has handed out its last batch; every later call
// returns it too. It is not a failure: the pipeline stops reading, lets the
// batches in flight apply and ack, and returns nil. Wrap it or return it
// as is; callers test with errors.Is.
var ErrEndOfStream = errors.New("end of stream")
