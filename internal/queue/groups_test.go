package queue_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// consume acks what arrives on each channel and returns, once n messages
// arrived in all, the UUIDs each channel got.
func consume(t *testing.T, n int, chans ...<-chan *message.Message) [][]string {
	t.Helper()
	var (
		mu    sync.Mutex
		got   = make([][]string, len(chans))
		total int
		all   = make(chan struct{})
	)
	for i, ch := range chans {
		go func() {
			for m := range ch {
				mu.Lock()
				got[i] = append(got[i], m.UUID)
				total++
				if total == n {
					close(all)
				}
				mu.Unlock()
				m.Ack()
			}
		}()
	}
	select {
	case <-all:
	case <-time.After(waitFor):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d messages arrived", total, n)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

func publishN(t *testing.T, b *queue.Broker, topic string, n int) []string {
	t.Helper()
	uuids := make([]string, n)
	for i := range n {
		uuids[i] = "m" + strconv.Itoa(i)
		require.NoError(t, b.Publish(topic, keyed(uuids[i], "k"+strconv.Itoa(i%37), "")))
	}
	return uuids
}

// Every consumer group gets every message.
func TestConsumerGroupsEachGetEverything(t *testing.T) {
	const n = 500
	b := newBroker(t, queue.Config{Lanes: 8})
	a, err := b.Subscriber("a").Subscribe(t.Context(), "t")
	require.NoError(t, err)
	bb, err := b.Subscriber("b").Subscribe(t.Context(), "t")
	require.NoError(t, err)

	sent := publishN(t, b, "t", n)
	got := consume(t, 2*n, a, bb)
	require.ElementsMatch(t, sent, got[0], "group a")
	require.ElementsMatch(t, sent, got[1], "group b")
}

// Subscribers of one group share its messages: each message goes to one of
// them. (How many each gets is the scheduler's: under load one subscription
// can take them all before the other's workers start, so it is not
// asserted.)
func TestConsumerGroupShared(t *testing.T) {
	const n = 1000
	b := newBroker(t, queue.Config{Lanes: 8})
	s1, err := b.Subscriber("shared").Subscribe(t.Context(), "t")
	require.NoError(t, err)
	s2, err := b.Subscriber("shared").Subscribe(t.Context(), "t")
	require.NoError(t, err)

	sent := publishN(t, b, "t", n)
	got := consume(t, n, s1, s2)
	require.ElementsMatch(t, sent, append(got[0], got[1]...), "each message once, to one of them")
}

// A group gets the messages published after it was created, which
// SubscribeInitialize does before anyone subscribes.
func TestConsumerGroupInitialized(t *testing.T) {
	b := newBroker(t, queue.Config{})
	require.NoError(t, b.SubscribeInitialize("t")) // the configured group
	sub := b.Subscriber("late")
	require.NoError(t, b.Publish("t", keyed("before", "", "")))
	require.NoError(t, sub.SubscribeInitialize("t"))
	require.NoError(t, b.Publish("t", keyed("after", "", "")))

	msgs, err := sub.Subscribe(t.Context(), "t")
	require.NoError(t, err)
	m := receive(t, msgs)
	require.Equal(t, "after", m.UUID, "the group was created after %q was published", "before")
	m.Ack()
}

// What is published before anyone subscribes is kept for the first group
// that shows up, whatever its name.
func TestFirstGroupTakesTheBacklog(t *testing.T) {
	b := newBroker(t, queue.Config{})
	require.NoError(t, b.Publish("t", keyed("early", "", "")))
	msgs, err := b.Subscriber("workers").Subscribe(t.Context(), "t")
	require.NoError(t, err)
	m := receive(t, msgs)
	require.Equal(t, "early", m.UUID)
	m.Ack()
}
