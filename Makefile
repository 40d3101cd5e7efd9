# Set-up and entry points. Every target first installs the Debian packages it needs (only
# those missing), so a fresh Debian machine needs nothing else.

DEBIAN_PACKAGES := pkg-config libopenblas-dev libdnnl-dev libhdf5-dev hdf5-tools libturbojpeg0-dev libpng-dev \
	zlib1g-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin
SWIFT_RELEASE := swift build -c release

.PHONY: dependencies run long sweep test bench clean

RUN_FOLDER ?= runs/main

## Install the Debian packages that are not installed yet.
dependencies:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" \
			|| missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

## The main job: a small DINO + SelfPatch pre-training on Fashion-MNIST, then k-NN and dense
## probes of the trained and a randomly initialised backbone, the report and a summary.
run: dependencies
	$(SWIFT_RELEASE) --product ssl-run
	.build/release/ssl-run --preset fashion-mnist --subset 6400 --epochs 6 --output $(RUN_FOLDER)
	.build/release/ssl-run eval --checkpoint $(RUN_FOLDER)/checkpoint.h5

## The hour recipe of the README, in two phases and an interpolation. First DINO + KoLeo: the
## `fashion-mnist` preset's backbone, DINO head and crops with patches of 7 pixels (local crops
## of 21) after a 16-channel convolutional stem, products in bfloat16, 10 passes over the 60,000
## training images (37,500 steps of 16), KoLeo's weight decaying from 0.5 to 0.1; SelfPatch sits
## out (a third of the step's time, nothing measurable in return at this scale: the README).
## Then copy-paste distillation from that checkpoint: 3 local crops of 56 pixels pasted among
## other garments of the batch, `pastedino` at weight 3 beside DINO and KoLeo, 4,400 steps over
## 35,200 images at twice the learning rate, the teacher's momentum from 0.996. The online probe
## runs after each pass of both. Last, the two checkpoints' weights are interpolated, the second
## phase's share rising from 0.7 at the patch embedding to 1 at the last block, and the result
## is evaluated.
long: dependencies
	$(SWIFT_RELEASE) --product ssl-run
	.build/release/ssl-run --preset fashion-mnist --patch-size 7 --local-size 21 --stem 16 --precision bf16 --epochs 10 \
		--tasks dino,koleo --weights koleo=0.5@0:0.1@100% --eval-every 1 --output runs/long-first-phase
	.build/release/ssl-run --preset fashion-mnist --patch-size 7 --stem 16 --precision bf16 \
		--tasks dino,koleo,pastedino --weights dino=1,koleo=0.5,pastedino=3 \
		--pastedino.pooling scene --pastedino.shared-head true --paste 1 --local-crops 3 --local-size 56 --local-scale 0.3,1 \
		--global-scale 0.4,1 --lr 0.004 --teacher-momentum 0.996 --subset 35200 --epochs 2 --eval-every 1 \
		--init-from runs/long-first-phase/checkpoint.h5 --output runs/long-second-phase
	.build/release/ssl-run interpolate runs/long-first-phase/checkpoint.h5 runs/long-second-phase/checkpoint.h5 \
		--weight 0.7 --profile depth --output runs/long/checkpoint.h5
	.build/release/ssl-run eval --checkpoint runs/long/checkpoint.h5

## Run a sweep file of tools/sweep (short configurations one after another, then their table).
SWEEP ?= tools/sweep/main-job-short.sweep
sweep: dependencies
	$(SWIFT_RELEASE) --product ssl-run
	python3 tools/sweep/sweep.py $(SWEEP) --runs runs/sweep-$(basename $(notdir $(SWEEP)))

EXAMPLE := examples/SimSiamPlugin
DENSE_EXAMPLE := examples/DenseCLPlugin

## Run the test suite, then build the example plugin packages: train SimSiam with dino and DenseCL
## with dino for a few steps, and run the DenseCL package's program that composes tasks in code.
## The tests also need Chromium, which renders a run's report in a real browser.
test: DEBIAN_PACKAGES += chromium
test: dependencies
	swift build --build-tests
	swift test --skip-build
	swift build --package-path $(EXAMPLE) --scratch-path .build-example
	rm -rf .build-example/run
	.build-example/debug/simsiam-run --tasks dino,simsiam --weights dino=1,simsiam=0.5 --arch 48x1 --heads 2 \
		--patch-size 4 --global-size 16 --local-crops 0 --batch-size 16 --subset 64 --epochs 1 --max-steps 3 --eval-every 0 \
		--dino.out-dim 64 --dino.hidden-dim 32 --dino.bottleneck-dim 16 --simsiam.dim 32 --output .build-example/run
	test -f .build-example/run/checkpoint.h5
	swift build --package-path $(DENSE_EXAMPLE) --scratch-path .build-example-densecl
	rm -rf .build-example-densecl/run .build-example-densecl/compose
	.build-example-densecl/debug/densecl-run --tasks dino,densecl --weights dino=1,densecl=0.5 --arch 48x1 --heads 2 \
		--patch-size 4 --global-size 16 --local-crops 0 --batch-size 16 --subset 64 --epochs 1 --max-steps 3 --eval-every 0 \
		--dino.out-dim 64 --dino.hidden-dim 32 --dino.bottleneck-dim 16 --densecl.dim 32 --densecl.hidden-dim 32 \
		--output .build-example-densecl/run
	test -f .build-example-densecl/run/checkpoint.h5
	.build-example-densecl/debug/densecl-compose .build-example-densecl/compose 3
	test -f .build-example-densecl/compose/checkpoint.h5

## Measure the engine in a release build (figures go to BENCHMARKS.md).
bench: dependencies
	$(SWIFT_RELEASE) --product ssl-bench
	.build/release/ssl-bench

clean:
	rm -rf .build
