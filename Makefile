# The two commands of the README:
#   make book   set up what is missing, execute out-of-date notebooks (paper profile), render HTML
#   make test   unit tests, notebooks under nbval, strict book build
# Both create .venv on first use (CPU torch, pinned). PROFILE=gpu make book runs the gpu profile (paths you give);
# only the paper and gpu profiles write book/ (a ci run goes to a folder: compendium run KEY --profile ci --out DIR).
PYTHON ?= python3
VENV   ?= .venv
PROFILE ?= paper
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test setup clean help constraints
help:
	@echo "make book   - set up, run out-of-date notebooks (PROFILE=$(PROFILE)), build the HTML book"
	@echo "make test   - unit tests, nbval over notebooks, strict book build"
	@echo "make setup  - only create $(VENV) and install"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	bash scripts/setup.sh $(VENV) $(PYTHON)
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/compendium build --profile $(PROFILE)

test: $(STAMP)
	bash scripts/test.sh

# After a deliberate upgrade of the environment: pin it again (then re-execute the chapters).
constraints: $(STAMP)
	bash scripts/freeze.sh $(VENV)

clean:
	rm -rf _build
