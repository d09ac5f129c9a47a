# The two commands README.md starts with:
#   make demo   install missing Debian packages, build, and run the demo
#   make test   build with warnings as errors (release + ASan/UBSan) and run every test
# Everything else is a helper of those two.

BUILD ?= build
ASAN  ?= build-asan
NINJA ?= ninja

.PHONY: all deps build asan test demo lint format clean

all: build

deps:
	@scripts/deps.sh

# Release build: gcc, hardened (stack protector, _FORTIFY_SOURCE=3, PIE, full RELRO), -Werror.
build: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then \
		meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true; \
	else \
		meson configure $(BUILD) -Dwerror=true >/dev/null; \
	fi
	@$(NINJA) -C $(BUILD)

# Sanitizer build: clang with ASan+UBSan (no recovery), libFuzzer targets, -Werror.
asan: deps
	@if [ ! -f $(ASAN)/build.ninja ]; then \
		CC=clang meson setup $(ASAN) --buildtype=debugoptimized -Dwerror=true -Dhardening=false \
			-Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true \
			-Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all; \
	fi
	@$(NINJA) -C $(ASAN)

test: build asan
	@scripts/test.sh

demo: build
	@scripts/demo.sh

lint: build
	@scripts/lint.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN)
