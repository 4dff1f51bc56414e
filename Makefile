# holdover: a write-behind persistence adapter for in-memory session nodes.
#
#   make test            vet, unit tests with -race, and the integration tests against a real
#                        Apache Cassandra that this Makefile starts (and stops if it started it)
#   make vet             gofmt, go mod tidy -diff, go vet and staticcheck (pinned, installed into bin/)
#   make test-dc         the tests that need a ring of two data centers (serial consistency of claims)
#   make test-secure     the tests against a Cassandra requiring TLS, passwords and permissions
#   make cassandra       start a local Cassandra node (NODES=3 for a three-node ring on 127.0.0.1-3;
#                        NODES=3 DCS=2 for three nodes in dc1 and dc2 on 127.0.0.11-13, beside it)
#   make cassandra-stop  stop the nodes `make cassandra` started
#   make soak            nemesis soak: three nodes, seeded faults, a history checker (DURATION=2m SEED=n)
#
# Set HOLDOVER_CASSANDRA_HOSTS to use a Cassandra you already run instead.

SHELL      := /bin/bash
NODES      ?= 1
DCS        ?= 1
CASSANDRA  := internal/devtools/cassandra/cassandra.sh
# WITH_CASSANDRA RING[,RING] -- COMMAND runs COMMAND with those rings running (ring1: the single
# node; ring3dc2: two data centers; secure: the secured node), started unless running or unless
# HOLDOVER_CASSANDRA_HOSTS, _DC_HOSTS or _SECURE_HOSTS names a cluster, and stops afterwards only
# those it started; its exit status is COMMAND's. The Cassandra release is CASSANDRA_VERSION there.
WITH_CASSANDRA := $(CASSANDRA) with
GO         ?= go
TEST_FLAGS ?= -race -count=1 -timeout 25m

.PHONY: help deps build vet test test-dc cassandra cassandra-stop cassandra-status cassandra-clean

help:
	@sed -n 's/^#   //p' Makefile

# deps installs what the targets need and a fresh machine may lack (as root, from Debian).
deps:
	@command -v $(GO) >/dev/null || { echo "make: Go is required (https://go.dev/dl/)"; exit 1; }
	@need=""; command -v java >/dev/null || need="$$need openjdk-17-jre-headless"; \
	 command -v mvn >/dev/null || need="$$need maven"; \
	 if [ -n "$$need" ]; then \
	   if [ "$$(id -u)" = 0 ]; then echo "make: installing$$need"; \
	     apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	   else echo "make: please install$$need"; exit 1; fi; \
	 fi

build:
	$(GO) build ./...

# staticcheck, pinned: 2026.2.2 (module v0.8.2) is the release for Go 1.26. vet installs it into bin/.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := bin/staticcheck-$(STATICCHECK_VERSION)
# VET_TAGS: the build tags of the tests make test-dc, test-secure and the drills build, vetted too.
VET_TAGS            := dcring,secure,drills

$(STATICCHECK):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin/.staticcheck $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@mv bin/.staticcheck/staticcheck $@ && rmdir bin/.staticcheck

# vet: gofmt, go.mod and go.sum tidy (go mod tidy -diff), go vet and staticcheck, each of the
# last two without build tags and with VET_TAGS.
vet: $(STATICCHECK)
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	 if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "make: go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags $(VET_TAGS) ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags $(VET_TAGS) ./...

cassandra: deps
	@$(CASSANDRA) start $(NODES) --dcs $(DCS)

cassandra-stop:
	@$(CASSANDRA) stop

cassandra-status:
	@$(CASSANDRA) status

cassandra-clean:
	@$(CASSANDRA) clean

# test starts Cassandra unless HOLDOVER_CASSANDRA_HOSTS is set, and stops it afterwards
# only when it was not running before; before that it runs a two-minute soak (soak-ci) and
# the two-data-center tests (test-dc), the tests against the secured node (test-secure) and the
# short SIP failover drill (drill-sip-short). Then it runs the CI drills in Docker (drills-ci).
test: deps vet
	@$(WITH_CASSANDRA) ring1 -- $(MAKE) --no-print-directory test-steps; rc=$$?; \
	 $(MAKE) --no-print-directory drills-ci || rc=1; \
	 exit $$rc

# test-steps: what make test runs while the single node is up, each step whatever the others did.
.PHONY: test-steps
test-steps:
	@echo "make: go test $(TEST_FLAGS) ./..."; \
	 $(GO) test $(TEST_FLAGS) ./...; rc=$$?; \
	 for step in soak-ci test-dc test-secure drill-sip-short; do \
	   $(MAKE) --no-print-directory $$step || rc=1; \
	 done; \
	 exit $$rc

# test-dc runs the tests built with the tag dcring (internal/store/dcring_test.go,
# adapter/storeopts_dc_test.go): ownership claims racing from two data centers, and Open's
# choice of serial consistency there. They need a ring of two data centers, three more JVMs
# (about 2-3 min; make test runs them after the soak). It starts that ring (cassandra.sh start 3 --dcs 2: dc1 on
# 127.0.0.11 and .13, dc2 on .12) unless HOLDOVER_CASSANDRA_DC_HOSTS names one, and the single
# node the adapter's tests also need unless HOLDOVER_CASSANDRA_HOSTS is set; afterwards it stops
# each of them only if it was not running before. The tests fail, never skip, without the ring.
test-dc: deps
	@$(GO) vet -tags dcring ./internal/store/ ./adapter/
	@echo "make: go test -tags dcring $(TEST_FLAGS) -run TwoDCs ./internal/store/ ./adapter/"; \
	 t0=$$SECONDS; \
	 $(WITH_CASSANDRA) ring1,ring3dc2 -- $(GO) test -tags dcring $(TEST_FLAGS) -v -run TwoDCs ./internal/store/ ./adapter/; rc=$$?; \
	 echo "make: test-dc took $$((SECONDS - t0)) s"; \
	 exit $$rc

# test-secure runs the tests built with the tag secure (adapter/secure_test.go,
# cmd/holdover-inspect/secure_test.go) against a Cassandra node that requires client TLS with a
# client certificate, PasswordAuthenticator and CassandraAuthorizer: TLS accepted and refused,
# wrong passwords, password-file rotation, the README's least-privilege role running every
# feature. It starts that node (cassandra.sh start-secure: 127.0.0.21, fresh certificates, about
# 15 s) unless HOLDOVER_CASSANDRA_SECURE_HOSTS names one, and the single node the adapter's
# test binary also needs unless HOLDOVER_CASSANDRA_HOSTS is set; afterwards it stops each of
# them only if it was not running before. The tests fail, never skip, without the secured node.
.PHONY: test-secure
test-secure: deps
	@$(GO) vet -tags secure ./adapter/ ./cmd/holdover-inspect/
	@echo "make: go test -tags secure $(TEST_FLAGS) -run Secure ./adapter/ ./cmd/holdover-inspect/"; \
	 $(WITH_CASSANDRA) ring1,secure -- $(GO) test -tags secure $(TEST_FLAGS) -v -run Secure ./adapter/ ./cmd/holdover-inspect/

# demo builds the reference node and the load generator, starts Cassandra unless
# HOLDOVER_CASSANDRA_HOSTS is set (stopping it afterwards only if it started it), and
# runs the failover demo: nodes A and B on a fresh keyspace, load, SIGKILL of A, B
# adopting A's sessions, verification. Its exit status is the demo's.
#   make demo            two nodes under load; SIGKILL one; prove nothing acknowledged is lost
.PHONY: demo
demo: deps
	@mkdir -p bin
	$(GO) build -o bin/holdover-node ./cmd/holdover-node
	$(GO) build -o bin/holdover-load ./cmd/holdover-load
	@$(WITH_CASSANDRA) ring1 -- bin/holdover-load demo -node-bin bin/holdover-node

# soak runs the nemesis soak (cmd/holdover-load soak, internal/soak): three reference nodes
# on 127.0.0.1:18191-18193 and a fresh keyspace (dropped afterwards), 200 sessions at 150
# operations/s, and a seeded schedule of faults: SIGKILL and restart of a node, SIGSTOP of a
# node past its lease, SIGKILL during a drain, a graceful restart, SIGSTOP of the Cassandra
# JVM for a few seconds, a node replaced by a new process with its ID, a node cut off from
# Cassandra past its lease (iptables; needs root), and bulk takeovers by a survivor. It writes e2e/out/soak-history.jsonl (every operation and fault),
# e2e/out/soak.json (counts and violations by invariant) and e2e/out/soak-logs/, prints a
# line every 5 s, and exits non-zero on any violation or when it cannot run. SEED=0 (the
# default) draws a seed from the time and prints it; the same SEED replays the same plan.
# It starts Cassandra like demo. With HOLDOVER_CASSANDRA_HOSTS set, Cassandra stalls need
# SOAK_FLAGS='-cassandra-pid N', or leave them out: SOAK_FLAGS='-faults kill,pause,term-kill,restart'.
#   make soak DURATION=30m SEED=n   a long one
#   make soak-ci                    the two-minute soak make test runs
DURATION   ?= 2m
SEED       ?= 0
SOAK_FLAGS ?=
.PHONY: soak soak-ci soak-deps
# soak-deps installs iptables as root when it is missing: the partition fault (which needs root)
# cuts a node off with it, and a fresh Debian lacks it until docker.io brings it along.
soak-deps:
	@if [ "$$(id -u)" = 0 ] && ! command -v iptables >/dev/null && [ ! -x /usr/sbin/iptables ]; then \
	   echo "make: installing iptables (the soak's partition fault)"; \
	   apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null; \
	 fi

soak: deps soak-deps
	@mkdir -p bin e2e/out
	$(GO) build -o bin/holdover-node ./cmd/holdover-node
	$(GO) build -o bin/holdover-load ./cmd/holdover-load
	@t0=$$SECONDS; \
	 $(WITH_CASSANDRA) ring1 -- bin/holdover-load soak -node-bin bin/holdover-node -cassandra-script $(CASSANDRA) \
	   -duration $(DURATION) -seed $(SEED) -out e2e/out $(SOAK_FLAGS); rc=$$?; \
	 echo "soak: $$((SECONDS - t0)) s in all"; \
	 exit $$rc

# soak-ci leaves Cassandra stalls out when the cluster is not the one this Makefile runs
# (HOLDOVER_CASSANDRA_HOSTS set): the soak cannot pause a JVM it does not know.
soak-ci:
	@if [ -n "$$HOLDOVER_CASSANDRA_HOSTS" ] && [ -z "$(SOAK_FLAGS)" ]; then \
	   $(MAKE) --no-print-directory soak DURATION=2m SOAK_FLAGS='-faults kill,pause,term-kill,restart,replace,partition'; \
	 else \
	   $(MAKE) --no-print-directory soak DURATION=2m; \
	 fi

# bench measures holdover beside its anchors (see docs/performance.md) and writes
# bench/out/results.json. Run it on a quiet machine. Its failover and overload figures come
# from holdover-load overload (3,000 new sessions at 1,500 events/s on two reference nodes,
# node A sent SIGTERM then SIGKILL 120 ms into its drain, then SIGKILL alone; 2 s leases) and
# its steady run (the saturation load probed, then 80% of it for 20 s, A SIGKILLed: the failover
# times), written to bench/out/failover.json; bench fails when a run lost anything or a node fenced.
# Its window step runs twice: at equal priority with the Cassandra node, then with the node at nice 10
# (this process ahead of it, as a host on its own cores); the second run gives the window's keys.
.PHONY: bench
bench: deps
	@mkdir -p bench/out
	@echo "bench: buffer benchmarks (go test -bench; commit and map interleaved, 5 rounds; before Cassandra starts) ..."; \
	 $(GO) test -run '^$$' -bench 'BenchmarkPendingKeyOverhead$$' -benchmem ./buffer/ | tee bench/out/buffer.txt; rc=$${PIPESTATUS[0]}; \
	 for i in 1 2 3 4 5; do \
	   [ $$rc = 0 ] || exit $$rc; \
	   $(GO) test -run '^$$' -bench 'BenchmarkCommitUpdate$$|BenchmarkBaselineMapUpdate$$|BenchmarkCommitDirtyKeyFamilies$$' -benchmem ./buffer/ | tee -a bench/out/buffer.txt; rc=$${PIPESTATUS[0]}; \
	 done; \
	 [ $$rc = 0 ] || exit $$rc
	@$(WITH_CASSANDRA) ring1 -- $(MAKE) --no-print-directory bench-cassandra

# bench-cassandra: the steps of make bench that need the single node (it is running).
.PHONY: bench-cassandra
bench-cassandra:
	@stress="$$($(CASSANDRA) fetch-stress)" || { echo "bench: cassandra-stress unavailable; stress_rows_per_s stays null"; stress=""; }; \
	 echo "bench: failover and overload (holdover-load overload: a burst of new sessions, node A failed during it) ..."; \
	 mkdir -p bin && $(GO) build -o bin/holdover-node ./cmd/holdover-node && $(GO) build -o bin/holdover-load ./cmd/holdover-load && \
	 bin/holdover-load overload -node-bin bin/holdover-node -out bench/out/failover.json; orc=$$?; \
	 pids=""; [ -n "$${HOLDOVER_CASSANDRA_HOSTS:-}" ] || pids="$$($(CASSANDRA) pids ring1)"; \
	 $(GO) run ./cmd/holdover-bench -gobench bench/out/buffer.txt -stress "$$stress" -failover bench/out/failover.json -cassandra-pids "$$pids" -out bench/out/results.json; rc=$$?; \
	 [ $$orc = 0 ] || rc=1; \
	 exit $$rc

# ---- failover drills (e2e/, in Docker) ----
#   make drills          the seven failover drills in Docker, then sip_failover; writes e2e/out/report.json, prints a table
#   make drills-ci       the crash, zombie and drain drills only (make test runs them; e2e/out/report-ci.json)
#   make drills-images   build the drills' images locally (cached; rebuilt only when inputs change)
# The drills start a Docker engine when none answers (as root, installing docker.io if needed) and
# stop it afterwards only if they started it. DRILLS="crash drain" picks drills; image names come
# from HOLDOVER_E2E_CASSANDRA_IMAGE and HOLDOVER_E2E_NODE_IMAGE (see e2e/README.md).
DRILLS      ?= all
DRILLS_CI   ?= crash zombie drain
DRILL_FLAGS ?= -count=1 -v -timeout 60m
E2E_ENGINE  := e2e/engine.sh

.PHONY: drills drills-ci drills-images

define run_drills
had=0; $(E2E_ENGINE) status | grep -q 'started by this script' && had=1; \
 $(E2E_ENGINE) start || exit 1; \
 t0=$$SECONDS; e2e/images/build.sh $(2); rc=$$?; \
 echo "drills: images ready in $$((SECONDS - t0)) s"; \
 if [ $$rc = 0 ] && [ -n "$(1)" ]; then \
   $(GO) vet -tags drills ./e2e/ && \
   HOLDOVER_DRILLS="$(1)" $(GO) test -tags drills $(DRILL_FLAGS) ./e2e/; rc=$$?; \
   echo "drills: $(1): $$((SECONDS - t0)) s in all"; \
 fi; \
 if [ $$had = 0 ]; then $(E2E_ENGINE) stop; fi; \
 exit $$rc
endef

# drills runs the Docker drills DRILLS names (all: every one) and, when DRILLS is all or names
# sip_failover, the SIP drill (drill-sip).
drills: deps
	@rc=0; \
	 if [ -n "$(strip $(filter-out sip_failover,$(DRILLS)))" ]; then \
	   ( $(call run_drills,$(strip $(filter-out sip_failover,$(DRILLS))),all) ) || rc=1; \
	 fi; \
	 case " $(DRILLS) " in *" all "*|*" sip_failover "*) $(MAKE) --no-print-directory drill-sip || rc=1;; esac; \
	 exit $$rc

drills-ci: deps
	@HOLDOVER_E2E_REPORT=report-ci.json; export HOLDOVER_E2E_REPORT; $(call run_drills,$(DRILLS_CI),all)

drills-images: deps
	@$(call run_drills,,all)

# ---- the SIP failover drill (e2e/sip): Kamailio, SIPp and three examples/sipnode processes on
# loopback (127.0.0.31-36), Cassandra as for make test, a fresh keyspace per run ----
#   make drill-sip        sip_failover: a node killed, one drained, one killed right after a commit; e2e/out/sip.json (~2.5 min)
#   make drill-sip-short  its kill run with fewer calls (make test runs it; under a minute)
# Kamailio (Debian kamailio, 5.6) and SIPp (Debian sip-tester, 3.6) are installed as root when missing.
SIP_DRILL_FLAGS ?= -count=1 -v -timeout 20m
.PHONY: sip-deps drill-sip drill-sip-short

sip-deps:
	@need=""; command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || need="$$need kamailio"; \
	 command -v sipp >/dev/null || need="$$need sip-tester"; \
	 if [ -n "$$need" ]; then \
	   if [ "$$(id -u)" = 0 ]; then echo "make: installing$$need"; \
	     apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	   else echo "make: please install$$need"; exit 1; fi; \
	 fi

drill-sip: deps sip-deps
	@$(GO) vet -tags drills ./e2e/sip/
	@t0=$$SECONDS; \
	 $(WITH_CASSANDRA) ring1 -- $(GO) test -tags drills $(SIP_DRILL_FLAGS) ./e2e/sip/; rc=$$?; \
	 echo "drills: sip_failover: $$((SECONDS - t0)) s in all"; \
	 exit $$rc

drill-sip-short:
	@SIP_DRILL_SHORT=1 $(MAKE) --no-print-directory drill-sip
