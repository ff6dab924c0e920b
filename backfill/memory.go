package backfill

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store that lives in the process: for tests, and for a
// one-shot load (`rowsync snapshot`) whose state need not outlive it.
type Memory struct {
	mu        sync.Mutex
	states    map[string]State
	cancelled map[string]string // table name -> ID asked to stop
	owner     string
	beat      time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{states: map[string]State{}, cancelled: map[string]string{}}
}

// List returns every state, ordered by Requested (then name).
func (m *Memory) List(context.Context) ([]State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]State, 0, len(m.states))
	for _, st := range m.states {
		out = append(out, st)
	}
	sortStates(out)
	return out, nil
}

func compareNames(a, b State) int {
	switch an, bn := a.Name(), b.Name(); {
	case an < bn:
		return -1
	case an > bn:
		return 1
	}
	return 0
}

// Request stores st unless the table has an active backfill.
func (m *Memory) Request(_ context.Context, st State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.states[st.Name()]; ok && old.Status.Active() {
		return ErrActive
	}
	m.states[st.Name()] = st
	delete(m.cancelled, st.Name())
	return nil
}

// Update replaces the state if the stored one has st.ID.
func (m *Memory) Update(_ context.Context, st State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.states[st.Name()]; !ok || old.ID != st.ID {
		return ErrReplaced
	}
	m.states[st.Name()] = st
	return nil
}

// Cancel flags the table's active backfill.
func (m *Memory) Cancel(_ context.Context, db, table string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.states[db+"."+table]
	if !ok || !st.Status.Active() {
		return false, nil
	}
	m.cancelled[st.Name()] = st.ID
	return true, nil
}

// Cancelled reports whether the backfill with id was asked to stop.
func (m *Memory) Cancelled(_ context.Context, db, table, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cancelled[db+"."+table] == id, nil
}

// Beat records owner as running now.
func (m *Memory) Beat(_ context.Context, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owner, m.beat = owner, time.Now()
	return nil
}

// Owner returns the newest beat.
func (m *Memory) Owner(context.Context) (string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owner, m.beat, nil
}

// Close does nothing.
func (m *Memory) Close() error { return nil }
