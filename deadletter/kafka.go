package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
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
}

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
	return errors.Join(errs...)
}

// Kafka writes dead letters to a topic and returns only after every
// in-sync replica has them (acks=all), so the source can be acked after.
type Kafka struct {
	w       *kafkago.Writer
	timeout time.Duration
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
	return &Kafka{timeout: c.Timeout, w: &kafkago.Writer{
		Addr: kafkago.TCP(c.Brokers...), Topic: c.Topic, Balancer: &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll, AllowAutoTopicCreation: true,
		BatchTimeout: time.Millisecond, WriteTimeout: c.Timeout,
	}}, nil
}

// Write sends recs and waits for the broker's acknowledgement.
func (k *Kafka) Write(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, len(recs))
	for i := range recs {
		msgs[i] = kafkago.Message{Key: []byte(recs[i].DB + "." + recs[i].Table), Value: Encode(&recs[i])}
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	if err := k.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write dead letter to kafka topic %s: %w", k.w.Topic, err)
	}
	return nil
}

// Close flushes and closes the writer.
func (k *Kafka) Close() error { return k.w.Close() }
