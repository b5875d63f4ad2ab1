package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// The permissions docs/jetstream.md lists, for topic events_perm, consumer
// hub and the default dead-letter subject and stream, in the server's
// terms. A test runs the transport with nothing more.
func leastPrivilege(provision bool) (pub, sub *server.Permissions) {
	pub = &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"events_perm"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
	sub = &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.CONSUMER.CREATE.events_perm.hub", "$JS.API.CONSUMER.CREATE.events_perm.hub.>",
			"$JS.API.CONSUMER.MSG.NEXT.events_perm.hub", "$JS.API.CONSUMER.INFO.events_perm.hub",
			"$JS.ACK.events_perm.hub.>", "dead_letter.events_perm",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
	if provision {
		pub.Publish.Allow = append(pub.Publish.Allow, "$JS.API.STREAM.INFO.events_perm", "$JS.API.STREAM.CREATE.events_perm")
		sub.Publish.Allow = append(sub.Publish.Allow, "$JS.API.STREAM.INFO.events_perm", "$JS.API.STREAM.CREATE.events_perm",
			"$JS.API.STREAM.INFO.DEAD_LETTER", "$JS.API.STREAM.CREATE.DEAD_LETTER")
	}
	return pub, sub
}

func TestLeastPrivilege(t *testing.T) {
	for _, provision := range []bool{true, false} {
		t.Run(map[bool]string{true: "provision", false: "streams made by an administrator"}[provision], func(t *testing.T) {
			pubPerms, subPerms := leastPrivilege(provision)
			srv := jstest.Start(t, func(o *server.Options) {
				o.Users = []*server.User{
					{Username: "admin", Password: "a"},
					{Username: "publisher", Password: "p", Permissions: pubPerms},
					{Username: "consumer", Password: "c", Permissions: subPerms},
				}
			})
			const topic = "events_perm"
			if !provision {
				admin := jetstream.Config{URL: srv.URL(), User: "admin", Password: "a", Consumer: "setup"}
				s, err := jetstream.NewSubscriber(admin, nil, nil, nil)
				require.NoError(t, err)
				require.NoError(t, s.SubscribeInitialize(topic))
				require.NoError(t, s.Close())
			}
			off := provision
			pcfg := testConfig("")
			pcfg.URL, pcfg.User, pcfg.Password, pcfg.Provision = srv.URL(), "publisher", "p", &off
			pub, err := jetstream.NewPublisher(pcfg, nil, nil)
			require.NoError(t, err)
			defer pub.Close()
			scfg := testConfig("hub")
			scfg.URL, scfg.User, scfg.Password, scfg.Provision = srv.URL(), "consumer", "c", &off
			scfg.MaxDeliver = 1
			sub, err := jetstream.NewSubscriber(scfg, nil, nil, nil)
			require.NoError(t, err)
			defer sub.Close()

			ok, poison := message.NewMessage("ok", nil), message.NewMessage("poison", nil)
			require.NoError(t, pub.Publish(topic, ok, poison))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := sub.Subscribe(ctx, topic)
			require.NoError(t, err)
			m := receive(t, ch)
			require.Equal(t, "ok", m.UUID)
			m.Ack()
			m = receive(t, ch)
			require.Equal(t, "poison", m.UUID)
			m.Nack()
			adminConn := connectAs(t, srv.URL(), "admin", "a")
			if !provision {
				// Without provisioning the dead letter has no stream: it
				// is retried, and kept, until one is made.
				makeDeadLetterStream(t, adminConn)
			}
			dl := readStream(t, adminConn, jetstream.DefaultDeadLetterStream, 1)
			require.Equal(t, "poison", dl[0].Headers().Get(jetstream.UUIDHeader))
			// The acks reached the server: nothing is left pending.
			require.Eventually(t, func() bool { return pendingOf(t, adminConn, topic, "hub") == 0 }, 10*time.Second, 10*time.Millisecond)
		})
	}
}

func connectAs(t *testing.T, url, user, password string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, password))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func makeDeadLetterStream(t *testing.T, nc *nats.Conn) {
	t.Helper()
	j, err := njs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = j.CreateStream(ctx, njs.StreamConfig{Name: jetstream.DefaultDeadLetterStream, Subjects: []string{"dead_letter.>"}})
	require.NoError(t, err)
}

// pendingOf is what consumer has delivered and not had acked, plus what it
// has yet to deliver.
func pendingOf(t *testing.T, nc *nats.Conn, stream, consumer string) uint64 {
	t.Helper()
	j, err := njs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := j.Consumer(ctx, stream, consumer)
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	return info.NumPending + uint64(info.NumAckPending)
}
