# Build and install the static binary, the man page and the systemd unit.
#   make && sudo make install        # into /usr/local
#   make install PREFIX=/usr DESTDIR=/tmp/stage
#   make deb                         # target/x86_64-unknown-linux-musl/debian/*.deb
#   make test                        # bash tests/all.sh (every test)
# `cargo install --path .` installs the binary alone.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=

CARGO ?= cargo
TARGET ?= x86_64-unknown-linux-musl
INSTALL ?= install

BIN := target/$(TARGET)/release/dmfilemapd
MAN := man/dmfilemapd.8
UNIT := systemd/dmfilemapd@.service

.PHONY: all build install uninstall test deb clean

all: build

# `make` always asks cargo, which rebuilds what changed; `make install`
# builds only when there is no binary yet, so `sudo make install` after
# `make` needs no toolchain for root.
build:
	$(CARGO) build --release --locked --target $(TARGET)

$(BIN):
	$(CARGO) build --release --locked --target $(TARGET)

install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/dmfilemapd
	$(INSTALL) -m 0644 $(MAN) $(DESTDIR)$(MANDIR)/man8/dmfilemapd.8
	if [ -f $(UNIT) ]; then \
		$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR) && \
		sed 's|/usr/sbin/dmfilemapd|$(SBINDIR)/dmfilemapd|g' $(UNIT) > $(DESTDIR)$(SYSTEMDUNITDIR)/dmfilemapd@.service && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/dmfilemapd@.service; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/dmfilemapd
	rm -f $(DESTDIR)$(MANDIR)/man8/dmfilemapd.8
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/dmfilemapd@.service

test:
	bash tests/all.sh

deb:
	$(CARGO) deb --locked --target $(TARGET)

clean:
	$(CARGO) clean
