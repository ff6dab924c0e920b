package decode

import (
	"context"
	"errors"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/backoff"
)

// SchemaRetry is the delay between decodes of a message that failed with
// ErrSchemaUnavailable: capped, so the stream resumes within seconds of the
// schema source answering again.
var SchemaRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// Retry decodes msg with d; while that fails with ErrSchemaUnavailable (the
// schema source does not answer: the message is not known to be bad), it
// waits SchemaRetry's backoff and decodes the same message again. The
// sources call it in their consuming goroutine, so the message is neither
// skipped nor acked and nothing behind it on its partition or queue passes
// it. Any other error is the message's own (dead letter). It returns ctx's
// error, and no events, if ctx ends while it waits; the caller then stops
// without counting msg as consumed. The schema source logs the outage and
// counts its failures (mysqlmeta.Schemas).
func Retry(ctx context.Context, d Decoder, msg Message) ([]cdc.Event, error) {
	for attempt := 1; ; attempt++ {
		evs, err := d.Decode(msg)
		if err == nil || !errors.Is(err, ErrSchemaUnavailable) {
			return evs, err
		}
		if !SchemaRetry.Wait(ctx, attempt) {
			return nil, ctx.Err()
		}
	}
}
