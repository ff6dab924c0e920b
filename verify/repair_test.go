package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/cdc"
)

// owner stands in for the pipeline's owner (`rowsync run`): it picks up
// key-list requests from the store and executes them as the engine does,
// reading each key's current row (refetch) and applying it to the sinks,
// or deleting the key where the row is gone. It records every request.
type owner struct {
	e     *env
	store backfill.Store
	pk    []string

	mu   sync.Mutex
	seen []backfill.State
}

func (o *owner) run(ctx context.Context) {
	for ctx.Err() == nil {
		_ = o.store.Beat(ctx, "test-owner")
		states, err := o.store.List(ctx)
		if err != nil {
			o.e.t.Error(err)
			return
		}
		for _, st := range states {
			if st.Status != backfill.Requested {
				continue
			}
			o.mu.Lock()
			o.seen = append(o.seen, st)
			o.mu.Unlock()
			st.Status, st.Started = backfill.Running, time.Now()
			if err := o.store.Update(ctx, st); err != nil {
				o.e.t.Error(err)
				return
			}
			evs := make([]cdc.Event, len(st.Keys))
			for i, k := range st.Keys {
				row := cdc.RowOf()
				for j, c := range o.pk {
					row.Set(c, k[j])
				}
				evs[i] = cdc.Event{DB: st.DB, Table: st.Table, Op: cdc.Update, PK: o.pk, Before: row, After: row}
			}
			out, err := o.e.rf.Refetch(ctx, evs)
			if err != nil {
				o.e.t.Error(err)
				return
			}
			o.e.apply(out)
			st.Status, st.Rows, st.Finished = backfill.Done, int64(len(out)), time.Now()
			if err := o.store.Update(ctx, st); err != nil {
				o.e.t.Error(err)
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (o *owner) requests() []backfill.State {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.seen)
}

// TestRepair: a hand-corrupted hash and document, missing ones and extra
// ones are reported, their keys requested as backfills of just those keys
// (in chunks), and once the owner has run them verify reports 0.
func TestRepair(t *testing.T) {
	e := newEnv(t, true, usersDDL, ordersDDL)
	e.fill(20)
	e.project("users")
	ctx := context.Background()
	e.rdb.HSet(ctx, e.key("users", 3), "name", "evil")
	e.rdb.Del(ctx, e.key("users", 5))
	e.rdb.HSet(ctx, e.key("users", 999), "id", "999", "name", "ghost")
	users := e.coll("users")
	if _, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(4)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "score", Value: "0.00"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(5)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(998)}}); err != nil {
		t.Fatal(err)
	}
	e.exec("DELETE FROM " + e.schema + ".users WHERE id = 7")

	var keys Keys
	rr, mr := e.verifyRedis("users", 6), e.verifyMongo("users", 6)
	for _, m := range append(rr.list, mr.list...) {
		keys.Add(m)
	}
	if rr.OK() || mr.OK() {
		t.Fatalf("corruption not seen: %v / %v", rr.Stats, mr.Stats)
	}
	want := []string{"3", "4", "5", "7", "998", "999"}
	var got []string
	for _, k := range keys.List() {
		got = append(got, strings.Join(k, ","))
	}
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Fatalf("repair keys %v, want %v", got, want)
	}

	store := backfill.NewMemory()
	o := &owner{e: e, store: store, pk: []string{"id"}}
	octx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); o.run(octx) }()
	defer func() { stop(); wg.Wait() }()

	var progress []backfill.Status
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := Repair(wctx, store, e.schema, "users", keys.List(), RepairOptions{Chunk: 4, Poll: 10 * time.Millisecond,
		Progress: func(st backfill.State) { progress = append(progress, st.Status) }})
	if err != nil {
		t.Fatal(err)
	}
	reqs := o.requests()
	if len(reqs) != 2 || len(reqs[0].Keys) != 4 || len(reqs[1].Keys) != 2 || reqs[0].ID == reqs[1].ID {
		t.Fatalf("requests %+v", reqs)
	}
	var sent []string
	for _, r := range reqs {
		if r.DB != e.schema || r.Table != "users" || r.Status != backfill.Requested || r.Estimate != int64(len(r.Keys)) {
			t.Errorf("request %+v", r)
		}
		for _, k := range r.Keys {
			sent = append(sent, strings.Join(k, ","))
		}
	}
	if slices.Sort(sent); !slices.Equal(sent, want) {
		t.Fatalf("requested %v, want %v", sent, want)
	}
	if !slices.Contains(progress, backfill.Done) {
		t.Errorf("progress %v", progress)
	}
	if r := e.verifyRedis("users", 6); !r.OK() || r.Rows != 19 {
		t.Fatalf("redis after repair: %v %+v", r.Stats, r.list)
	}
	if r := e.verifyMongo("users", 6); !r.OK() || r.Rows != 19 {
		t.Fatalf("mongo after repair: %v %+v", r.Stats, r.list)
	}
}

// TestRepairRefused: an active backfill of the table, and a failed
// request, end the repair with an error that says so.
func TestRepairRefused(t *testing.T) {
	ctx := context.Background()
	store := backfill.NewMemory()
	if err := store.Request(ctx, backfill.State{DB: "d", Table: "t", ID: "full", Status: backfill.Running}); err != nil {
		t.Fatal(err)
	}
	err := Repair(ctx, store, "d", "t", [][]string{{"1"}}, RepairOptions{})
	if !errors.Is(err, backfill.ErrActive) {
		t.Fatalf("active: %v", err)
	}

	store = backfill.NewMemory()
	go func() {
		for {
			states, _ := store.List(ctx)
			if len(states) == 1 {
				st := states[0]
				st.Status, st.Error = backfill.Failed, "boom"
				_ = store.Update(ctx, st)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	err = Repair(ctx, store, "d", "t", [][]string{{"1"}}, RepairOptions{Poll: 5 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "failed: boom") {
		t.Fatalf("failed: %v", err)
	}
}

func TestKeys(t *testing.T) {
	k := Keys{Max: 2}
	for _, m := range []Mismatch{
		{Kind: Missing, PK: []string{"1"}}, {Kind: Different, PK: []string{"1"}},
		{Kind: Unchecked, PK: []string{"2"}}, {Kind: Unrenderable, PK: []string{"3"}},
		{Kind: Extra}, {Kind: Extra, PK: []string{"4"}}, {Kind: Missing, PK: []string{"5"}},
	} {
		k.Add(m)
	}
	if fmt.Sprint(k.List()) != "[[1] [4]]" || k.Dropped != 1 {
		t.Fatalf("%v dropped %d", k.List(), k.Dropped)
	}
}
