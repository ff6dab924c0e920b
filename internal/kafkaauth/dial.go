package kafkaauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rowsync/rowsync/internal/tlsconf"
)

// Dialer returns the dialer of a Kafka client that authenticates with s
// over t (the client's sasl: and tls: blocks), so every Kafka connection
// rowsync makes is set up in this one place.
func Dialer(s SASL, t tlsconf.Config, clientID string, timeout time.Duration) (*kafkago.Dialer, error) {
	mech, err := s.Build()
	if err != nil {
		return nil, err
	}
	tc, err := t.Client("tls.", "")
	if err != nil {
		return nil, err
	}
	return &kafkago.Dialer{ClientID: clientID, Timeout: timeout, DualStack: true, KeepAlive: 30 * time.Second,
		TLS: tc, SASLMechanism: mech}, nil
}

// Transport returns the transport of a Kafka writer that authenticates
// with s over t.
func Transport(s SASL, t tlsconf.Config, clientID string) (*kafkago.Transport, error) {
	d, err := Dialer(s, t, clientID, 0)
	if err != nil {
		return nil, err
	}
	return &kafkago.Transport{TLS: d.TLS, SASL: d.SASLMechanism, ClientID: clientID}, nil
}

// Ping asks the brokers in turn for the cluster's brokers, with the TLS
// and SASL of s and t, and returns nil at the first that answers: the
// connection test of `rowsync check` for a Kafka client.
func Ping(ctx context.Context, brokers []string, s SASL, t tlsconf.Config) error {
	d, err := Dialer(s, t, "rowsync", 5*time.Second)
	if err != nil {
		return err
	}
	if len(brokers) == 0 {
		return errors.New("no brokers")
	}
	var errs []string
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_, err = conn.Brokers()
		conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("no broker answered: %s", strings.Join(errs, "; "))
}
