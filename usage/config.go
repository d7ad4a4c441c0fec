package usage

import (
	"fmt"
	"time"

	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// Config is the `usage:` section of Parley's configuration.
type Config struct {
	// Plugin configures the plugin process (retention, callback retries).
	Plugin usagev1.Config `yaml:"plugin"`
	// QueueSize bounds the in-memory queue between Publish and the sender;
	// when it is full events go to the spool instead.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most events sent to the plugin in one message.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits for its batch to fill.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// BatchTimeout bounds the wait for the plugin to acknowledge a batch.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// RetryInterval is the pause before the publisher tries a plugin that
	// was unavailable again (events spool meanwhile).
	RetryInterval time.Duration `yaml:"retry_interval"`
	// SpoolSegment is the size at which a spool file is closed.
	SpoolSegment int64 `yaml:"spool_segment"`
	// SpoolMax caps the spool on disk; events beyond it are dropped and
	// counted (parley_usage_events_dropped_total). 0: no cap.
	SpoolMax int64 `yaml:"spool_max"`
	// Callback delivery: ClaimWait is the long-poll of the deliverer,
	// Lease how long a claimed entry is reserved for this host, Workers how
	// many callbacks run at once, CallbackTimeout bounds one callback.
	ClaimWait       time.Duration `yaml:"claim_wait"`
	Lease           time.Duration `yaml:"lease"`
	Workers         int           `yaml:"workers"`
	CallbackTimeout time.Duration `yaml:"callback_timeout"`
	// Holder names this host in the outbox leases (default: hostname).
	Holder string `yaml:"holder"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Plugin:          usagev1.DefaultConfig(),
		QueueSize:       64 << 10,
		BatchSize:       2000,
		FlushInterval:   20 * time.Millisecond,
		BatchTimeout:    5 * time.Second,
		RetryInterval:   500 * time.Millisecond,
		SpoolSegment:    8 << 20,
		SpoolMax:        1 << 30,
		ClaimWait:       time.Second,
		Lease:           30 * time.Second,
		Workers:         8,
		CallbackTimeout: 10 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Plugin.Validate(); err != nil {
		return err
	}
	switch {
	case c.QueueSize < 1:
		return fmt.Errorf("usage.queue_size must be positive")
	case c.BatchSize < 1 || c.BatchSize > 20000:
		return fmt.Errorf("usage.batch_size must be 1..20000")
	case c.FlushInterval <= 0 || c.BatchTimeout <= 0 || c.RetryInterval <= 0:
		return fmt.Errorf("usage.flush_interval, batch_timeout and retry_interval must be positive")
	case c.SpoolSegment < 4096:
		return fmt.Errorf("usage.spool_segment must be at least 4096 bytes")
	case c.SpoolMax != 0 && c.SpoolMax < c.SpoolSegment:
		return fmt.Errorf("usage.spool_max must be 0 (no cap) or at least spool_segment")
	case c.ClaimWait <= 0 || c.Lease <= c.CallbackTimeout || c.CallbackTimeout <= 0:
		return fmt.Errorf("usage.claim_wait and callback_timeout must be positive and lease longer than callback_timeout")
	case c.Workers < 1:
		return fmt.Errorf("usage.workers must be positive")
	}
	return nil
}
