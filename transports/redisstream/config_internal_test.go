package redisstream

import (
	"crypto/tls"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
)

// TestUniversalOptions: the connection modes a Config selects.
func TestUniversalOptions(t *testing.T) {
	client := func(t *testing.T, c Config) redis.UniversalClient {
		t.Helper()
		require.NoError(t, c.Validate())
		o, err := c.universalOptions()
		require.NoError(t, err)
		require.True(t, o.ContextTimeoutEnabled, "message deadlines bound Redis calls")
		rc := redis.NewUniversalClient(o)
		t.Cleanup(func() { _ = rc.Close() })
		return rc
	}

	t.Run("url: one server", func(t *testing.T) {
		c := Config{URL: "redis://alice:pw@10.0.0.1:6380/3"}
		o, err := c.universalOptions()
		require.NoError(t, err)
		require.Equal(t, []string{"10.0.0.1:6380"}, o.Addrs)
		require.Equal(t, "alice", o.Username)
		require.Equal(t, "pw", o.Password)
		require.Equal(t, 3, o.DB)
		require.Nil(t, o.TLSConfig)
		require.IsType(t, &redis.Client{}, client(t, c))
	})
	t.Run("addrs: cluster", func(t *testing.T) {
		c := Config{Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}, Password: "pw"}
		require.IsType(t, &redis.ClusterClient{}, client(t, c))
	})
	t.Run("cluster with one seed", func(t *testing.T) {
		require.IsType(t, &redis.ClusterClient{}, client(t, Config{URL: "redis://10.0.0.1:7000", Cluster: true}))
		require.IsType(t, &redis.ClusterClient{}, client(t, Config{Addrs: []string{"10.0.0.1:7000"}, Cluster: true}))
	})
	t.Run("sentinel", func(t *testing.T) {
		c := Config{Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, MasterName: "mymaster"}
		o, err := c.universalOptions()
		require.NoError(t, err)
		require.Equal(t, "mymaster", o.MasterName)
		client(t, c) // a failover client, which go-redis types as *redis.Client
	})
	t.Run("fields override the url", func(t *testing.T) {
		c := Config{URL: "redis://alice:pw@h:1/3", Username: "bob", Password: "other", DB: 5}
		o, err := c.universalOptions()
		require.NoError(t, err)
		require.Equal(t, "bob", o.Username)
		require.Equal(t, "other", o.Password)
		require.Equal(t, 5, o.DB)
	})
	t.Run("rediss", func(t *testing.T) {
		c := Config{URL: "rediss://h.example:6380"}
		o, err := c.universalOptions()
		require.NoError(t, err)
		require.NotNil(t, o.TLSConfig)
		require.Equal(t, "h.example", o.TLSConfig.ServerName)
		require.GreaterOrEqual(t, o.TLSConfig.MinVersion, uint16(tls.VersionTLS12))
	})
	t.Run("tls.enabled", func(t *testing.T) {
		c := Config{Addrs: []string{"a:1", "b:1"}, TLS: TLSConfig{Enabled: true, ServerName: "redis.internal"}}
		o, err := c.universalOptions()
		require.NoError(t, err)
		require.Equal(t, "redis.internal", o.TLSConfig.ServerName)
	})
	t.Run("tls files missing", func(t *testing.T) {
		_, err := (&Config{URL: "rediss://h:1", TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}).universalOptions()
		require.ErrorContains(t, err, "tls.ca_file: ")
	})
}

// TestFactorySharesOneClient: the publisher and the subscriber a Factory
// builds use one client.
func TestFactorySharesOneClient(t *testing.T) {
	tr, err := Factory(transports.Settings{
		Name: "redis",
		Decode: func(target any) error {
			*target.(*Config) = Config{URL: "redis://127.0.0.1:1/0", ConsumerGroup: "hub"}
			return nil
		},
		Logger:     watermill.NopLogger{},
		Registerer: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	pub := tr.Publisher.(*Publisher)
	sub := tr.Subscriber.(*Subscriber)
	require.Same(t, pub.client, sub.client)
	require.NoError(t, pub.Close())
	require.NotErrorIs(t, pub.client.Ping(t.Context()).Err(), redis.ErrClosed, "the subscriber still uses the client")
	require.NoError(t, pub.Close())
	require.NotErrorIs(t, pub.client.Ping(t.Context()).Err(), redis.ErrClosed, "a second Close releases nothing")
	require.NoError(t, sub.Close())
	require.ErrorIs(t, pub.client.Ping(t.Context()).Err(), redis.ErrClosed)
}
