package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

// pending is a batch being built or handed out: the decoded events and
// rejects of a contiguous run of deliveries on one channel.
type pending struct {
	s       *Source
	sess    *session
	events  []cdc.Event
	rejects []cdc.Reject
	rows    *cdc.BatchRows // the events' rows, recycled once acked
	msgs    int
	last    uint64 // highest delivery tag

	// reject_to_dlx only: each poison message with the highest good tag
	// before it (0 if none) since the previous poison message, and the
	// highest good tag after the last one.
	toDLX    []dlxSeg
	lastGood uint64

	acked atomic.Bool
}

type dlxSeg struct {
	good, poison uint64
}

// initialCap bounds the per-batch preallocation, so a trickle of single
// messages closed by max_wait does not allocate full-size batches.
const initialCap = 64

func (s *Source) newPending(sess *session) *pending {
	n := min(s.cfg.BatchSize, initialCap)
	return &pending{s: s, sess: sess, events: make([]cdc.Event, 0, n), rows: s.rowPool.Rows()}
}

// add decodes d into b. It runs on the consumer goroutine, so decoding
// overlaps with the pipeline applying the previous batch. While the schema
// source does not answer it decodes d again with backoff (decode.Retry),
// holding the queue; ctx's error if it ended meanwhile, and then b is
// unchanged (d, unacked, is redelivered). With several ordered consumers
// an event without a Version is fatal (errFatal): the sinks' version guard
// could not keep its row's order.
func (s *Source) add(ctx context.Context, b *pending, d *amqp.Delivery) error {
	evs, err := s.decode(ctx, b.rows, b.events, d)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.msgs++
	b.last = d.DeliveryTag
	pos := s.pos(d.DeliveryTag)
	if err != nil {
		if s.cfg.RejectToDLX {
			s.log.Warn("undecodable message; dead-lettering to the queue's exchange on ack",
				"pos", pos, "error", err)
			b.toDLX = append(b.toDLX, dlxSeg{good: b.lastGood, poison: d.DeliveryTag})
			b.lastGood = 0
			return nil
		}
		b.rejects = append(b.rejects, cdc.Reject{Pos: cdc.Position{Text: pos}, Raw: d.Body, Reason: err})
		b.lastGood = d.DeliveryTag
		return nil
	}
	b.lastGood = d.DeliveryTag
	guarded := s.cfg.needsVersions()
	for i := range evs {
		if evs[i].Pos.Text == "" {
			evs[i].Pos.Text = pos
		}
		if guarded && evs[i].Pos.Version == 0 {
			return fmt.Errorf("%w: consumers: %d: message %s carries no binlog position (its events have no version), so a version guard cannot keep its row's order across consumers: have the producer write positions (Maxwell output_binlog_position), or set consumers: 1, or unordered: true",
				errFatal, s.cfg.Consumers, pos)
		}
	}
	if len(b.events)+len(evs) > cap(b.events) && cap(b.events) < s.cfg.BatchSize {
		// A batch that outgrows initialCap comes from a busy queue: size it
		// for a full batch at once rather than doubling up to it.
		b.events = slices.Grow(b.events, max(s.cfg.BatchSize, len(b.events)+len(evs))-len(b.events))
	}
	b.events = decode.Append(b.events, evs)
	return nil
}

// decode runs the (guarded) decoder on d, retrying while the schema source
// does not answer; the events' rows come from rows.
// A decoder may build them in the room of evs, the batch's events
// (decode.Message.Events).
func (s *Source) decode(ctx context.Context, rows *cdc.BatchRows, evs []cdc.Event, d *amqp.Delivery) ([]cdc.Event, error) {
	return decode.Retry(ctx, s.dec, decode.Message{
		Value:   d.Body,
		Topic:   s.cfg.Queue,
		Offset:  int64(d.DeliveryTag),
		Headers: headers(d.Headers),
		Rows:    rows,
		Events:  evs,
	})
}

// headers converts AMQP header values to bytes: strings and byte slices as
// they are, anything else in its fmt form.
func headers(t amqp.Table) map[string][]byte {
	if len(t) == 0 {
		return nil
	}
	h := make(map[string][]byte, len(t))
	for k, v := range t {
		switch v := v.(type) {
		case string:
			h[k] = []byte(v)
		case []byte:
			h[k] = v
		case nil:
			h[k] = nil
		default:
			h[k] = fmt.Append(nil, v)
		}
	}
	return h
}

func (b *pending) batch() cdc.Batch {
	return cdc.Batch{Events: b.events, Rejects: b.rejects, Ack: b.ack}
}

// ack settles b's deliveries.
//
// With err == nil it acks them with one basic.ack(multiple) of the highest
// tag, which also covers the Rejects (the pipeline wrote them to the dead
// letter first). With reject_to_dlx it acks up to each poison message,
// nacks that one without requeue, and acks the rest, so the broker routes
// it to the queue's dead-letter exchange only after everything before it
// was applied.
//
// With err != nil it asks for redelivery by closing the channel: the broker
// requeues every unacked delivery of the channel, this batch and any later
// ones the pipeline holds, and redelivers them in queue order on a new
// channel. A basic.nack(requeue) of this batch alone would not keep order:
// the consumer already holds later messages, which would then be applied
// before the requeued ones come back.
//
// If b's channel is already gone, ack does nothing and returns nil: the
// broker redelivers b's messages, and tags of the old channel must never
// be acked on the new one. A failed ack frame is logged and also returns
// nil for the same reason: an unacked delivery is redelivered, never lost.
//
// With err == nil the events' rows go back to the source's pool
// (cdc.RowPool), whatever becomes of the ack frame: the pipeline is done
// with them.
func (b *pending) ack(_ context.Context, err error) error {
	if !b.acked.CompareAndSwap(false, true) {
		return errors.New("rabbitmq batch acked twice")
	}
	if err == nil {
		b.rows.Recycle()
	}
	s := b.s
	log := s.log.With("pos", s.pos(b.last), "generation", b.sess.gen)
	if b.sess.dead() {
		log.Debug("batch of a closed channel not acked; the broker redelivers it")
		return nil
	}
	if err != nil {
		log.Info("batch not applied; recycling the channel for redelivery", "error", err)
		b.sess.recycle.Store(true)
		b.sess.kill()
		return nil
	}
	if aerr := b.settle(); aerr != nil {
		if errors.Is(aerr, amqp.ErrClosed) {
			log.Debug("channel closed before ack; the broker redelivers the batch")
		} else {
			log.Warn("ack failed; the broker redelivers the batch", "error", aerr)
		}
	}
	return nil
}

func (b *pending) settle() error {
	ch := b.sess.ch
	if !b.s.cfg.RejectToDLX {
		b.s.ackFrames.Add(1)
		return ch.Ack(b.last, true)
	}
	for _, seg := range b.toDLX {
		if seg.good != 0 {
			b.s.ackFrames.Add(1)
			if err := ch.Ack(seg.good, true); err != nil {
				return err
			}
		}
		b.s.ackFrames.Add(1)
		if err := ch.Nack(seg.poison, false, false); err != nil {
			return err
		}
	}
	if b.lastGood != 0 {
		b.s.ackFrames.Add(1)
		return ch.Ack(b.lastGood, true)
	}
	return nil
}
