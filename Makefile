# The README's two commands: `make run` and `make check`; `make install`
# for production (README "Production").
BUILD ?= build
SAN_BUILD ?= build-san
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 45

.PHONY: all deps build link run check check-san clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# `make run` leaves `coffer` on PATH as the README types it: a link in
# LINK_DIR (root: /usr/local/bin, else ~/.local/bin) to this build's
# binary; an installed coffer (not a link) there is left alone.
LINK_DIR ?= $(if $(filter 0,$(shell id -u)),/usr/local/bin,$(HOME)/.local/bin)

link:
	@mkdir -p $(LINK_DIR)
	@if [ -e $(LINK_DIR)/coffer ] && [ ! -L $(LINK_DIR)/coffer ]; then \
		echo "make: $(LINK_DIR)/coffer is an installed coffer: left alone ($(BUILD)/coffer is this build's)"; \
	else \
		ln -sfn $(abspath $(BUILD))/coffer $(LINK_DIR)/coffer && echo "make: $(LINK_DIR)/coffer -> $(abspath $(BUILD))/coffer"; \
	fi
	@case ":$$PATH:" in *":$(LINK_DIR):"*) ;; \
		*) echo "make: $(LINK_DIR) is not on your PATH: add it (export PATH=$(LINK_DIR):\$$PATH)";; esac

run: build link
	$(BUILD)/coffer dev $(ARGS)

# Starts a throw-away PostgreSQL server for the tests when COFFER_TEST_PG_URL
# is not given (scripts/check.sh).
check: build
	scripts/check.sh $(BUILD) release

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

# SAN_TEST_ARGS: options for meson test. By default the sanitizer run leaves
# out the PostgreSQL runs that repeat the SQLite runs' C but for the store
# driver (suite pg-repeat, tests/integration/meson.build); store-pg, the
# run-path files and the PostgreSQL-only files put the driver under the
# sanitizers. SAN_TEST_ARGS= runs everything.
SAN_TEST_ARGS ?= --no-suite pg-repeat
check-san: deps $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)
	scripts/check.sh $(SAN_BUILD) sanitizers $(SAN_TEST_ARGS)

# The libFuzzer targets (tests/fuzz, docs/FUZZ.md), FUZZ_SECONDS each, under
# ASan+UBSan in a clang build of their own.
.PHONY: fuzz
fuzz: deps
	FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)

# The benchmark table (docs/BENCHMARKS.md): release build in build-bench/,
# peers installed, every row run; about 15 minutes. Not part of `make check`.
.PHONY: bench
bench: deps
	scripts/bench.sh

# `make install` puts what an operator runs into $(DESTDIR)$(PREFIX): the
# binary of the last `make build` (it builds nothing, so `sudo make install`
# after `make` leaves no root-owned files in $(BUILD)), the man pages, bash
# and zsh completion, and the systemd units with ExecStart pointing at the
# installed binary. It creates no user and no /etc/coffer (README).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
UNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS = coffer-keeper.service coffer-api.service coffer-agent.service

.PHONY: install uninstall
install:
	@test -x $(BUILD)/coffer || { echo "install: no $(BUILD)/coffer: run 'make build' first" >&2; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/coffer $(DESTDIR)$(BINDIR)/coffer
	install -m 0644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	cat completions/words.sh completions/bash.sh > $(DESTDIR)$(BASHCOMPDIR)/coffer
	{ echo '#compdef coffer'; cat completions/words.sh completions/zsh.sh; } > $(DESTDIR)$(ZSHCOMPDIR)/_coffer
	chmod 0644 $(DESTDIR)$(BASHCOMPDIR)/coffer $(DESTDIR)$(ZSHCOMPDIR)/_coffer
	for u in $(UNITS); do \
		sed 's|/usr/local/bin/coffer|$(BINDIR)/coffer|' dist/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/coffer $(DESTDIR)$(BASHCOMPDIR)/coffer $(DESTDIR)$(ZSHCOMPDIR)/_coffer
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(wildcard man/*.1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(wildcard man/*.8)))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
