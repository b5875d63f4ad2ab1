# switchyard — the two commands: `make run` (the chat demo, no services
# needed) and `make test` (every test, with the race detector).
GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 200000x
HTTP_BENCHTIME ?= 20000x
COUNT     ?= 6
RATIO_COUNT ?= 10
FUZZTIME  ?= 100000x
SOAK      ?= 2m
STATICCHECK_VERSION ?= v0.8.2
BENCHSTAT_VERSION   ?= v0.0.0-20260908200009-22c9c6c9d4da

.PHONY: run test deps lint bench bench-ratios bench-redis fuzz soak chaos redis demo-redis redis-stop screenshot

run:
	$(GO) run ./examples/chat

# redis-server: the Redis tests start their own on free loopback ports.
deps:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing redis-server"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; \
	  else echo "redis-server not found: the Redis tests will be skipped (apt-get install redis-server)"; fi; }

test: deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	# Watermill's TestReconnect restarts our redis-server (and our embedded
	# NATS server) mid-stream. It races
	# on its own bookkeeping (it can assert before recording the last publish:
	# "received 10000, sent 9999"), so the -race run leaves it out and this
	# runs it without -race, up to 16 times per package. transports/redisstream's own
	# TestReconnect, synchronised, runs in the -race run above.
	# Each package gets its own attempts: one that passes need not wait for
	# the other to pass in the same attempt.
	@for pkg in ./transports/redisstream/ ./transports/jetstream/; do \
	  for i in $$(seq 16); do \
	    $(GO) test -count=1 -timeout 10m -run 'TestPubSub/TestReconnect' $$pkg && continue 2; \
	    echo "Watermill TestReconnect failed in $$pkg (attempt $$i)"; done; exit 1; done

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

# The performance report: runs every benchmark (each starts its own
# redis-server and HTTP hub on loopback), reads them with benchstat's
# library and rewrites docs/performance.md, its chart
# docs/images/perf-latency.png and the guard's figures
# (benchmarks/report/baseline.json); the raw output stays in bench.txt.
# About 15 minutes on 2 cores. Add ARGS=-quick for a brief run.
bench: deps
	$(GO) run ./benchmarks/report $(ARGS)

# The in-process systems alone, through benchstat, as changes from the
# bare channel: what each layer costs.
bench-ratios:
	$(GO) test -run '^$$' -bench '^BenchmarkInProcess$$' -benchmem -benchtime 100000x -count $(RATIO_COUNT) ./benchmarks/ | tee bench-ratios.txt
	$(GO) run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION) -col /system bench-ratios.txt

# Redis Streams alone: the bus against go-redis and watermill-redisstream,
# one redis-server for all.
bench-redis: deps
	$(GO) test -run '^$$' -bench '^BenchmarkRedis$$' -benchmem -benchtime 1s -count $(COUNT) ./benchmarks/ | tee bench-redis.txt
	$(GO) run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION) -col /impl bench-redis.txt

# The CI guard, under 3 minutes: the targets' benchmarks, briefly; fails
# when a figure is worse than half (a ratio that must be high) or twice (one
# that must be low, or twice its target if higher; four times for p99
# ratios, which short runs move most) what docs/performance.md reports.
.PHONY: bench-guard
bench-guard: deps
	$(GO) run ./benchmarks/report -guard

# Every FuzzX function of every package, each for $(FUZZTIME) (go test
# fuzzes one target at a time), found by go test -list so that a new one
# is never left out. A count of inputs, not a duration: with a duration,
# Go 1.26's fuzzing coordinator can fail a target with "context deadline
# exceeded" as the time runs out (golang/go#75804, fixed in Go 1.27).
fuzz:
	@list=$$($(GO) test -list '^Fuzz' $(PKGS)) || { echo "$$list"; exit 1; }; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { fn[n++] = $$1 } /^ok/ { for (i = 0; i < n; i++) print $$2 "," fn[i]; n = 0 }'); \
	[ -n "$$targets" ] || { echo "no fuzz targets found"; exit 1; }; \
	for t in $$targets; do \
	  pkg=$${t%%,*}; fn=$${t#*,}; \
	  echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# The soak (build tag soak): the chat traffic for $(SOAK) through a rollout
# that moves every 3s while Redis is killed every 15s; nothing may be lost,
# goroutines and heap stay bounded. With the race detector.
soak: deps
	SWITCHYARD_SOAK_DURATION=$(SOAK) $(GO) test -tags soak -race -count=1 -timeout 30m -run '^TestSoak' -v ./bus/

# The chaos suite (build tag chaos): real redis-server processes with
# Toxiproxy in front of Redis and of the HTTP hub; each scenario prints one
# row (published, delivered, lost, duplicated, dead-lettered, recovered
# after). See docs/chaos.md.
chaos: deps
	$(GO) test -tags chaos -count=1 -timeout 30m -run '^TestChaos' -v ./bus/

# A throwaway redis-server on 127.0.0.1:6380, the original service's Redis,
# for running the demo on Redis Streams. Stop it with: redis-cli -p 6380 shutdown
redis:
	redis-server --port 6380 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes

# The chat demo as a rollout (examples/chat/rollout.yaml: HTTP the baseline,
# Redis Streams the candidate, fallback on) against a throwaway redis-server
# of its own: port DEMO_REDIS_PORT, pid file, log and working directory in
# DEMO_REDIS_DIR, nothing saved to disk. It is started once and kept
# across runs of the demo; `make redis-stop` stops it. The machine's own
# Redis (6379, /var/run) is never touched. DEMO_CONFIG names another file
# of the same shape; ADDR the page's and API's address.
DEMO_REDIS_PORT ?= 6380
DEMO_REDIS_DIR  ?= /tmp/switchyard-demo-redis-$(DEMO_REDIS_PORT)
DEMO_CONFIG     ?= examples/chat/rollout.yaml

demo-redis: deps
	@mkdir -p $(DEMO_REDIS_DIR)
	@pid=$$(cat $(DEMO_REDIS_DIR)/redis.pid 2>/dev/null); \
	if [ -n "$$pid" ] && [ "$$(ps -p "$$pid" -o comm= 2>/dev/null)" = redis-server ]; then \
	  echo "demo redis-server already running on 127.0.0.1:$(DEMO_REDIS_PORT) (pid $$pid)"; \
	else \
	  if redis-cli -h 127.0.0.1 -p $(DEMO_REDIS_PORT) ping >/dev/null 2>&1; then \
	    echo "127.0.0.1:$(DEMO_REDIS_PORT) is taken by a Redis that is not the demo's: stop it, or DEMO_REDIS_PORT=<port>" >&2; exit 1; fi; \
	  redis-server --port $(DEMO_REDIS_PORT) --bind 127.0.0.1 --save '' --appendonly no \
	    --daemonize yes --pidfile $(DEMO_REDIS_DIR)/redis.pid --logfile $(DEMO_REDIS_DIR)/redis.log \
	    --dir $(DEMO_REDIS_DIR) || exit 1; \
	  for i in $$(seq 50); do redis-cli -h 127.0.0.1 -p $(DEMO_REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	  redis-cli -h 127.0.0.1 -p $(DEMO_REDIS_PORT) ping >/dev/null 2>&1 || { \
	    echo "demo redis-server did not start; its log:" >&2; tail -5 $(DEMO_REDIS_DIR)/redis.log >&2; exit 1; }; \
	  echo "demo redis-server on 127.0.0.1:$(DEMO_REDIS_PORT) (pid $$(cat $(DEMO_REDIS_DIR)/redis.pid)); make redis-stop stops it"; \
	fi
	SWITCHYARD_TRANSPORTS__REDIS__URL=redis://127.0.0.1:$(DEMO_REDIS_PORT)/0 $(GO) run ./examples/chat -config $(DEMO_CONFIG)

# Stops the redis-server of demo-redis, by its pid file only (and only if
# that pid is a redis-server).
redis-stop:
	@pid=$$(cat $(DEMO_REDIS_DIR)/redis.pid 2>/dev/null); \
	if [ -z "$$pid" ] || [ "$$(ps -p "$$pid" -o comm= 2>/dev/null)" != redis-server ]; then \
	  echo "no demo redis-server running (pid file $(DEMO_REDIS_DIR)/redis.pid)"; rm -f $(DEMO_REDIS_DIR)/redis.pid; exit 0; fi; \
	kill "$$pid"; \
	for i in $$(seq 50); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done; \
	if kill -0 "$$pid" 2>/dev/null; then echo "demo redis-server (pid $$pid) did not stop" >&2; exit 1; fi; \
	rm -f $(DEMO_REDIS_DIR)/redis.pid; echo "demo redis-server on 127.0.0.1:$(DEMO_REDIS_PORT) stopped"

# docs/images/chat.png, the README's picture of the page: the browser test
# on Redis takes it as it takes its own artifact.
screenshot: deps
	CHAT_SCREENSHOT=$(CURDIR)/docs/images/chat.png $(GO) test -count=1 -run '^TestBrowserOnRedis$$' ./examples/chat/
