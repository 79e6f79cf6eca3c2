# udf-builder.  `make` builds bin/udf-builder; `make test` installs what the
# tests need, builds, and runs every test, then again under ASan+UBSan;
# `make SANITIZE=1 check` runs the sanitized pass alone.  See docs/development.md.

CC ?= cc
PKGS := jansson libarchive libcurl openssl zlib
SANITIZE ?= 0

ifeq ($(SANITIZE),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
BIN := $(BUILD)/udf-builder
else
BUILD := build/release
SANFLAGS :=
BIN := bin/udf-builder
endif

INCLUDES := -Icommon -Ibuilder -Icache -Iregistry-client -Icmd
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers \
	  -fno-strict-aliasing $(SANFLAGS) $(INCLUDES) $(shell pkg-config --cflags $(PKGS))
LDLIBS := $(shell pkg-config --libs $(PKGS)) -lpthread
LDFLAGS += $(SANFLAGS)

LIB_SRC := $(wildcard common/*.c builder/*.c cache/*.c registry-client/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/builder/templates_data.o
CMD_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cmd/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/%-replay)
LIB := $(BUILD)/libudfb.a

.PHONY: all check test deps test-deps run fuzz bench clean
all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/builder/templates_data.o: builder/templates_data.S templates/server.py templates/Dockerfile.in
	@mkdir -p $(dir $@)
	$(CC) -c -o $@ builder/templates_data.S

$(LIB): $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(CMD_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/check.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

# The fuzz targets, linked with a driver that replays a corpus (any compiler).
$(BUILD)/tests/fuzz_%-replay: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< tests/fuzz/replay.c $(LIB) $(LDFLAGS) $(LDLIBS)

# libFuzzer builds for fuzzing sessions: make fuzz; build/fuzz/fuzz_request CORPUS_DIR
fuzz:
	$(MAKE) CC=clang BUILD=build/fuzz SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" build/fuzz/libudfb.a
	for f in $(FUZZ_SRC); do \
		clang $(INCLUDES) -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined $$f build/fuzz/libudfb.a \
			$(LDLIBS) -o build/fuzz/$$(basename $$f .c) || exit 1; done

deps:
	@deploy/install-deps.sh build

test-deps:
	@deploy/install-deps.sh test

# One pass of every test with the current build (SANITIZE=0 or 1).
check: $(BIN) $(UNIT_BIN) $(FUZZ_REPLAY)
	UDFB_BIN=$(abspath $(BIN)) UDFB_TEST_BUILD=$(abspath $(BUILD)) SANITIZE=$(SANITIZE) tests/run.sh

test: test-deps
	$(MAKE) check
	$(MAKE) SANITIZE=1 check

bench: $(BIN)
	bench/run.sh

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d)
