package all

import (
	_ "github.com/switchyard-go/switchyard/transports/gochannel"   // registers "gochannel"
	_ "github.com/switchyard-go/switchyard/transports/http"        // registers "http"
	_ "github.com/switchyard-go/switchyard/transports/jetstream"   // registers "jetstream"
	_ "github.com/switchyard-go/switchyard/transports/memory"      // registers "memory"
	_ "github.com/switchyard-go/switchyard/transports/redisstream" // registers "redisstream"
)
