package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rowsync/rowsync/internal/kafkaauth"
	"github.com/rowsync/rowsync/internal/tlsconf"
)

// KafkaConfig sends dead letters to a Kafka topic.
type KafkaConfig struct {
	// Brokers to bootstrap from. Required.
	Brokers []string `yaml:"brokers"`
	// Topic receives one JSON record per message, keyed by "db.table".
	// Required.
	Topic string `yaml:"topic"`
	// Timeout bounds one write. Default: 10s
	Timeout time.Duration `yaml:"timeout"`
	// SASL and TLS as for the Kafka source (sasl: {mechanism, username,
	// password | password_file}; tls: {enabled, ca_file, ...}).
	SASL kafkaauth.SASL `yaml:"sasl"`
	TLS  tlsconf.Config `yaml:"tls"`
	// MaxRecordBytes caps one record: a longer one is cut (see
	// Record.Truncated) so it fits the broker's message.max.bytes.
	// Default: 1000000 (below Kafka's default limit of 1 MiB)
	MaxRecordBytes int `yaml:"max_record_bytes"`
}

// DefaultMaxRecordBytes is the default of KafkaConfig.MaxRecordBytes.
const DefaultMaxRecordBytes = 1000000

// Validate reports every problem, each prefixed by its key.
func (c KafkaConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: required"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must not be negative"))
	}
	if c.MaxRecordBytes < 0 || c.MaxRecordBytes > 0 && c.MaxRecordBytes < 4096 {
		errs = append(errs, errors.New("max_record_bytes: must be at least 4096"))
	}
	errs = append(errs, c.SASL.Validate("sasl.")...)
	errs = append(errs, c.TLS.Validate("tls.")...)
	return errors.Join(errs...)
}

// Kafka writes dead letters to a topic and returns only after every
// in-sync replica has them (acks=all), so the source can be acked after.
type Kafka struct {
	w         *kafkago.Writer
	timeout   time.Duration
	maxRecord int
}

var _ Writer = (*Kafka)(nil)

// NewKafka returns a writer for c; it connects on the first Write.
func NewKafka(c KafkaConfig) (*Kafka, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	tr, err := kafkaauth.Transport(c.SASL, c.TLS, "rowsync")
	if err != nil {
		return nil, err
	}
	return &Kafka{timeout: c.Timeout, maxRecord: c.MaxRecordBytes, w: &kafkago.Writer{
		Addr: kafkago.TCP(c.Brokers...), Topic: c.Topic, Balancer: &kafkago.Hash{},
		Transport:    tr,
		RequiredAcks: kafkago.RequireAll, AllowAutoTopicCreation: true,
		BatchTimeout: time.Millisecond, WriteTimeout: c.Timeout,
		// room for one full record with its key and framing
		BatchBytes: int64(c.MaxRecordBytes) + 64<<10,
	}}, nil
}

// Write sends recs and waits for the broker's acknowledgement.
func (k *Kafka) Write(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, len(recs))
	for i := range recs {
		key := recs[i].DB + "." + recs[i].Table
		if len(key) > 1024 {
			key = key[:1024]
		}
		msgs[i] = kafkago.Message{Key: []byte(key), Value: EncodeMax(&recs[i], k.maxRecord)}
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	err := k.w.WriteMessages(ctx, msgs...)
	if err == nil {
		return nil
	}
	// The broker refuses some records for good (a topic whose
	// max.message.bytes is below max_record_bytes): report those as
	// unwritable so the pipeline goes on; anything else is retried.
	var we kafkago.WriteErrors
	if errors.As(err, &we) && len(we) == len(msgs) {
		ue := &UnwritableError{Failed: map[int]error{}}
		for i, e := range we {
			switch {
			case e == nil:
			case permanentKafka(e):
				ue.Failed[i] = fmt.Errorf("kafka topic %s: %w", k.w.Topic, e)
			default:
				return fmt.Errorf("write dead letter to kafka topic %s: %w", k.w.Topic, err)
			}
		}
		if len(ue.Failed) > 0 {
			return ue
		}
		return nil
	}
	// The client refuses a message over its batch size before sending
	// anything: send the others, report that one. (EncodeMax keeps records
	// below the batch size, so this is a safety net.)
	var tl kafkago.MessageTooLargeError
	if errors.As(err, &tl) && len(tl.Message.Value) > 0 {
		for i := range msgs {
			if &msgs[i].Value[0] != &tl.Message.Value[0] {
				continue
			}
			if len(tl.Remaining) > 0 {
				if err := k.w.WriteMessages(ctx, tl.Remaining...); err != nil {
					return fmt.Errorf("write dead letter to kafka topic %s: %w", k.w.Topic, err)
				}
			}
			return &UnwritableError{Failed: map[int]error{i: fmt.Errorf("kafka topic %s: %w", k.w.Topic, err)}}
		}
	}
	return fmt.Errorf("write dead letter to kafka topic %s: %w", k.w.Topic, err)
}

// permanentKafka reports errors that no retry of the same record fixes.
func permanentKafka(err error) bool {
	for _, code := range []kafkago.Error{kafkago.MessageSizeTooLarge, kafkago.InvalidMessage,
		kafkago.InvalidMessageSize, kafkago.RecordListTooLarge, kafkago.InvalidRecord} {
		if errors.Is(err, code) {
			return true
		}
	}
	return false
}

// Close flushes and closes the writer.
func (k *Kafka) Close() error { return k.w.Close() }
