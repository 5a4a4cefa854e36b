# dfdetect — every target sets itself up: `make setup` is idempotent and the others
# depend on it. Knobs: SCALE=smoke|cpu|paper, DATA=<store or dataset>, FACES=procedural|DIR,
# REPEATS=N, CROSS=<second dataset store>, CONFIGS=a,b, WEIGHTS=imagenet|FILE, EPOCHS=N,
# OUT=DIR, PRECISION=auto|float32|mixed_bfloat16, GENERATOR=2|3 (the benchmark's forgery
# generator; 2 made the committed tables) (see EXP_ARGS); NETWORK= for inception-unfreeze
# and BACKBONE= for reproduce-deepforense (see there).

PYTHON_SYS ?= python3
VENV       ?= .venv
# The environment: $(VENV) when it exists or must be made; but when there is none and the
# python in use (PYTHON_SYS) already imports dfdetect and what it needs (after `pip
# install ".[cpu]"`), every target runs with that python instead of building a second
# 2 GB environment. find_spec only locates the modules: make starts in milliseconds.
NEEDS      := dfdetect tensorflow keras cv2 sklearn face_recognition
FIND_ALL   := import importlib.util as u, sys; \
              sys.exit(any(u.find_spec(m) is None for m in '$(NEEDS)'.split()))
REUSE      := $(if $(wildcard $(VENV)/bin/python),,$(shell $(PYTHON_SYS) -c \
              "$(FIND_ALL)" 2>/dev/null && echo yes))
PY         := $(if $(REUSE),$(PYTHON_SYS),$(VENV)/bin/python)
SCALE      ?= cpu
FACES      ?= procedural
SEED       ?= 0
DATA       ?=
CROSS      ?=
REPEATS    ?=
STAMP      := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= Agg

.PHONY: setup test reproduce-fusion reproduce-convlstm reproduce-pose \
        reproduce-deepforense detector detector-variants grid-custom-cnn inception-unfreeze grid-sequence \
        bench bench-whole-runs benchmark-difficulty pose-env pose-check clean

ifeq ($(REUSE),yes)
setup:
	@echo "setup: $(PYTHON_SYS) imports dfdetect and its dependencies: using it, no $(VENV)"
else
setup: $(STAMP)
endif

# Reinstall only when the requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml tools/dlib-shim/pyproject.toml
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import tensorflow, keras, cv2, sklearn, face_recognition, dfdetect"
	touch $(STAMP)

# The pose tests and pose-check need MediaPipe's own venv (about 40 s to install).
# TEST_WORKERS processes share the suite, one test file each at a time (module fixtures
# are built once); TEST_WORKERS=1, or a python without pytest-xdist, runs it in one.
TEST_WORKERS ?= 2
test: setup pose-env
	$(PY) -m pytest -q $$($(PY) -c "import xdist" 2>/dev/null && [ "$(TEST_WORKERS)" -gt 1 ] \
	    && echo "-n $(TEST_WORKERS) --dist loadfile") --durations=15 tests
	$(MAKE) --no-print-directory pose-check

# Experiment knobs passed through to every experiment script. CONFIGS=a,b runs a subset
# (--configs; --models for P3 and P5), WEIGHTS=imagenet|FILE the backbones' weights,
# EPOCHS=N caps training, OUT=DIR the results folder. Without OUT, a run at other than
# the committed settings (SCALE=smoke, CONFIGS, ...) writes results/scratch/<experiment>.
CONFIGS     ?=
WEIGHTS     ?=
EPOCHS      ?=
# PRECISION=auto|mixed_bfloat16: training precision (empty: float32, the committed results;
# auto probes each model in both and keeps bfloat16 where it is > 10 % faster).
PRECISION   ?=
GENERATOR   ?=
CONFIG_FLAG  = --configs
reproduce-convlstm reproduce-deepforense: CONFIG_FLAG = --models
# OUT also names `make realworld`'s folder (a default below): passed on only when given.
USER_OUT = $(if $(filter command line environment environment override,$(origin OUT)),$(OUT))
EXP_ARGS = --scale $(SCALE) --faces $(FACES) --seed $(SEED) \
           $(if $(DATA),--data $(DATA)) $(if $(CROSS),--cross $(CROSS)) \
           $(if $(REPEATS),--repeats $(REPEATS)) $(if $(CONFIGS),$(CONFIG_FLAG) $(CONFIGS)) \
           $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
           $(if $(PRECISION),--precision $(PRECISION)) $(if $(USER_OUT),--out $(USER_OUT)) \
           $(if $(GENERATOR),--generator $(GENERATOR))

reproduce-fusion: setup
	$(PY) experiments/p1_fusion.py $(EXP_ARGS)

# P3 — Xception + CBAM + Bi-ConvLSTM and its two baselines on the video benchmark.
reproduce-convlstm: setup
	$(PY) experiments/p3_convlstm_cbam.py $(EXP_ARGS)

POSE_VENV   ?= .venv-pose
POSE_PY     := $(POSE_VENV)/bin/python
POSE_STAMP  := $(POSE_VENV)/.installed
POSE_VIDEOS ?= $(wildcard ../shared/data/videos/upperbody_*.mp4)
POSE_CHECK  ?= build/pose-check

pose-env: $(POSE_STAMP)

# MediaPipe 0.10.14 needs protobuf < 5 and TensorFlow 2.21 protobuf >= 6.31: it gets its
# own venv, installed --no-deps from the full pin list (its metadata would pull jax,
# jaxlib and opencv-contrib). The self-check loads the pose models (offline).
$(POSE_STAMP): requirements-pose.txt
	test -x $(POSE_PY) || $(PYTHON_SYS) -m venv $(POSE_VENV)
	$(POSE_PY) -m pip install --quiet --upgrade pip
	$(POSE_PY) -m pip install --quiet --no-deps -r requirements-pose.txt
	$(POSE_PY) tools/mediapipe_pose.py --self-check
	touch $(POSE_STAMP)

# P4 — `dfdetect pose extract` with MediaPipe on the real upper-body videos; fails unless a
# pose is found in >= 95 % of every video's frames.
pose-check: setup pose-env
	$(PY) -m dfdetect.cli pose extract $(POSE_VIDEOS) --backend mediapipe --label real \
	    --out $(POSE_CHECK) --overwrite --min-detected 0.95

reproduce-pose: setup
	$(PY) experiments/p4_pose_lstm.py $(EXP_ARGS)

# P2 — comparison of ANNs. Run inception-unfreeze before grid-sequence: the sequence grid
# reads the InceptionV3 chosen for Table 3 (results/p2/inception/models/best.json) as its
# feature extractor; without it, it trains the paper's best option once itself.
grid-custom-cnn: setup
	$(PY) experiments/p2_custom_cnn_grid.py $(EXP_ARGS)

# NETWORK=lite0: the same unfreezing study (top 50 % / top 25 % / head, same head and
# training) on ImageNet EfficientNet-Lite0, into results/p2/lite0_unfreeze/ beside the
# InceptionV3 one, with comparison.csv pairing its runs with results/p2/inception/'s.
NETWORK ?=
inception-unfreeze: setup
	$(PY) experiments/p2_inception_unfreeze.py $(EXP_ARGS) $(if $(NETWORK),--network $(NETWORK))

grid-sequence: setup
	$(PY) experiments/p2_sequence_grid.py $(EXP_ARGS)

# Is the embedded image benchmark neither trivial nor impossible? Per face source: pixel
# logistic regression (should stay < 0.75 AUC) vs Meso-4 trained <= 10 min (should pass
# 0.85), plus contact sheets, in results/benchmarks/. 7 min per source at cpu scale (measured).
DIFFICULTY_FACES ?= procedural ../shared/data/faces

benchmark-difficulty: setup
	for faces in $(DIFFICULTY_FACES); do \
	    $(PY) experiments/benchmark_difficulty.py --scale $(SCALE) --faces $$faces --seed $(SEED) \
	        $(if $(GENERATOR),--generator $(GENERATOR)) \
	        || exit 1; done

# Every hot path against its limit and its naive peer: one script per hot path in
# benchmarks/, each writing results/bench/<name>.csv; run_all.py adds bench_run.csv and
# renders results/bench/README.md from the CSVs. BENCH_ONLY=face_crop,memory runs a subset.
BENCH_OUT  ?= results/bench
BENCH_ONLY ?=

bench: setup
	$(PY) benchmarks/run_all.py --out $(BENCH_OUT) $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

# Peak memory of whole cpu-scale runs (each experiment's make target start to end, its
# process tree sampled): hours in all, so not part of `make bench`. WHOLE_RUNS picks them;
# the results the runs write are the experiments' usual ones.
WHOLE_RUNS ?= p1 p3 p4 p5
bench-whole-runs: setup pose-env
	$(PY) benchmarks/whole_run_memory.py --out $(BENCH_OUT) --scale $(SCALE) $(WHOLE_RUNS)
	$(PY) benchmarks/run_all.py --out $(BENCH_OUT) --readme-only

# P5 DeepForense: CNN features (backbone fine-tuned on 50 % of identities first) into
# SVM / random forest / MLP, bagging / boosting / stacking; k-fold CV grouped by identity.
# Writes results/p5/{cv,stacking,selection,videos,setup}.csv, pca.png, tsne.png,
# frame_scores.png, cv.png. SCALE=smoke runs in a few minutes, cpu in under 30.
# BACKBONE=lite0 WEIGHTS=imagenet: the same protocol on ImageNet EfficientNet-Lite0, into
# results/p5/lite0-imagenet/, its comparison.csv pairing its folds with results/p5/'s.
BACKBONE ?=
reproduce-deepforense: setup
	$(PY) experiments/p5_deepforense.py $(EXP_ARGS) $(if $(BACKBONE),--backbone $(BACKBONE))

# Real deepfakes (FaceForensics++ c23 and c40, DFDC, Celeb-DF: 129 videos in
# ../shared/data/realworld/): does a detector recognise what real face-swap and
# reenactment tools make? Never training material. Only the shipped detector's training
# selects on its FF++ clips (checkpoint and threshold, as the SBI protocol selects on FF++
# validation); the Celeb-DF / DFDC clips are a cross-dataset test. Writes OUT/scores.csv,
# metrics.csv (all / per source / per method) and roc.png.
# `make realworld MODEL=results/fusion/models/meso4.keras [OUT=...]`
MODEL     ?= dfdetect/weights/default.keras
OUT       ?= results/realworld/$(basename $(notdir $(MODEL)))
REALWORLD ?= ../shared/data/realworld
MESONET   ?= ../shared/weights/mesonet

.PHONY: realworld realworld-mesonet realworld-compare
REALWORLD_SUMMARY = $(PY) -c "from dfdetect.evaluate import summarize_folder as s; print('summary:', s('results/realworld'))"
realworld: setup
	$(PY) -m dfdetect.cli evaluate --model $(MODEL) $(REALWORLD) --out $(OUT)
	$(REALWORLD_SUMMARY)

# Reference rows: the MesoNet authors' released Meso-4 weights (trained by them on real
# deepfakes; read from $(MESONET), never copied here), 16 frames a video as measured in
# its README, into results/realworld/mesonet_<weights>/.
realworld-mesonet: setup
	for weights in Meso4_DF Meso4_F2F; do \
	    $(PY) -m dfdetect.cli evaluate --mesonet $(MESONET)/$$weights.h5 --frames 16 \
	        $(REALWORLD) --out results/realworld/mesonet_$$weights || exit 1; done
	$(REALWORLD_SUMMARY)

# The shipped detector against its references on the same videos, with 95 % intervals per
# subset (all, FF++ selection c23 / c40, Celeb-DF + DFDC test, each method) and paired
# bootstrap differences: results/realworld/detector/{comparison,paired}.csv + .png.
# COMPARE names <folder under results/realworld> models; the first is compared to the rest.
COMPARE ?= default default_v1_scratch mesonet_Meso4_DF mesonet_Meso4_F2F
realworld-compare: setup
	$(PY) -c "import sys; from dfdetect import comparison as c; names = sys.argv[1:]; \
	    c.compare({n: 'results/realworld/' + n for n in names}, references=names[1:], \
	              out='results/realworld/detector', \
	              title='shipped detector vs references on the real deepfakes')" $(COMPARE)
	$(PY) -m dfdetect.report

# The shipped default detector (dfdetect/weights/default.keras): SBI + boundary head on
# ImageNet EfficientNet-Lite0 (the settings' cpu stage: 128 px, 8 epochs), trained on
# ../shared/data/faces and frames of ../shared/data/videos, its epoch and threshold chosen
# on realworld/'s FF++ clips. Resumable: rerun to continue; DETECTOR_HOURS stops cleanly
# after the epoch past it.
DETECTOR_HOURS ?=
detector: setup
	$(PY) experiments/default_detector.py --scale $(SCALE) --seed $(SEED) \
	    $(if $(DETECTOR_HOURS),--hours $(DETECTOR_HOURS)) \
	    $(if $(PRECISION),--precision $(PRECISION))

# Inference variants (frame aggregation, mirrored crops) of the shipped detector and of
# VARIANTS="NAME=PATH ..." further exported detectors, scored on the FF++ selection clips
# into results/detector/variants.csv. COMBINE="NAME=shipped+r4 ..." also scores those
# models' averaged scores (ensemble) and averaged weights (soup) against the shipped one,
# into results/detector/combinations.csv.
VARIANTS ?=
COMBINE ?=
detector-variants: setup
	$(PY) experiments/detector_variants.py --model shipped=dfdetect/weights/default.keras \
	    $(foreach m,$(VARIANTS),--model $(m)) $(foreach c,$(COMBINE),--combine $(c))

clean:
	rm -rf $(VENV) $(POSE_VENV) .pytest_cache build *.egg-info
