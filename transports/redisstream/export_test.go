package redisstream

// SendThroughFlushers makes every publish of p go through a flusher, as on
// a client that does not end calls at their context's deadline, so that
// tests reach that path with the transport's own client.
func SendThroughFlushers(p *Publisher) { p.direct = false }
