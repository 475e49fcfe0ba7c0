# Image URL to use all building/pushing image targets
IMG ?= ghcr.io/awskubeflowprofiles/operator:v$(VERSION)
VERSION ?= 0.1.0

# Go's bin and the project's tool directory.
LOCALBIN ?= $(shell pwd)/bin
GOBIN ?= $(shell go env GOPATH)/bin
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

## Tool versions
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.0
SETUP_ENVTEST_VERSION ?= v0.25.1
ACTIONLINT_VERSION ?= v1.7.12
# The Kubernetes version of envtest follows k8s.io/api in go.mod (v0.37.2 -> 1.37.2).
ENVTEST_K8S_VERSION ?= $(shell go list -m -f "{{ .Version }}" k8s.io/api | awk -F'[v.]' '{printf "1.%d.%d", $$3, $$4}')
ENVTEST_DIR ?= $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)-$(shell go env GOOS)-$(shell go env GOARCH)

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
SETUP_ENVTEST ?= $(LOCALBIN)/setup-envtest
ACTIONLINT ?= $(LOCALBIN)/actionlint
OPM ?= $(LOCALBIN)/opm
# OPM_IMAGE, and the versions the kind target runs, are pinned in one file.
include e2e/kind/pins.env
OPM_VERSION ?= $(lastword $(subst :, ,$(OPM_IMAGE)))
OPERATOR_SDK ?= $(shell command -v operator-sdk 2>/dev/null)

# e2e target: local (runs here), kind (Docker and internet), eks (an AWS account).
E2E_TARGET ?= local
GINKGO_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD, RBAC role and webhook manifests.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	go run ./hack/crdschema config/crd/bases/kubeflow.aws_awskubeflowprofiles.yaml

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint-workflows
lint-workflows: actionlint ## Check the GitHub workflows: actionlint (run: scripts with shellcheck, where installed), then SHA pins, permissions and timeouts.
	@command -v shellcheck >/dev/null || echo "lint-workflows: shellcheck not found, so run: scripts are not checked (apt-get install shellcheck)"
	$(ACTIONLINT)
	go run ./hack/workflowlint .github/workflows

.PHONY: lint-scripts
lint-scripts: ## Check scripts/ with shellcheck, where it is installed.
	@if command -v shellcheck >/dev/null; then shellcheck -x scripts/*.sh .ci/run; \
	else echo "lint-scripts: shellcheck not found, scripts not checked (apt-get install shellcheck)"; fi

.PHONY: envtest
envtest: setup-envtest ## Obtain kube-apiserver and etcd for envtest (download, else build from Go modules).
	@scripts/envtest-binaries.sh $(ENVTEST_K8S_VERSION) $(ENVTEST_DIR) $(SETUP_ENVTEST) >/dev/null

.PHONY: test
test: manifests generate fmt vet envtest test-unit test-e2e-local test-e2e-node ## Run every test that can run here: unit, envtest integration, and e2e on the local target and, as root, the node target.

.PHONY: test-unit
test-unit: envtest ## Run unit and envtest+kumo integration tests.
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test ./api/... ./internal/... ./cmd/... ./hack/... ./e2e/framework/... -coverprofile cover.out

.PHONY: test-e2e-local
test-e2e-local: ## Run the e2e suite on the local target (real control plane, kumo, operator as processes).
	$(MAKE) test-e2e E2E_TARGET=local

.PHONY: test-e2e-node
test-e2e-node: ## Run the e2e suite on a real single-node cluster of this machine (root; skips with the reason elsewhere).
	$(MAKE) test-e2e E2E_TARGET=node

.PHONY: test-e2e
test-e2e: envtest build kustomize ## Run the e2e suite on E2E_TARGET (local, node, kind or eks); a target that cannot run here skips with the reason.
	E2E_K8S_VERSION=$(ENVTEST_K8S_VERSION) scripts/e2e.sh $(E2E_TARGET) $(ENVTEST_DIR) $(GINKGO_FLAGS)

BENCH_SIZES ?= 10,100,1000

.PHONY: bench
bench: envtest build ## Benchmark the pure packages, then the operator end to end for BENCH_SIZES profiles, rate limit lifted and default; prints tables.
	go test -run '^$$' -bench . -benchmem ./internal/policy/ ./internal/desired/
	go run ./hack/bench -assets "$(ENVTEST_DIR)" -manager bin/manager -n $(BENCH_SIZES) -rate 0 -resync 20s
	go run ./hack/bench -assets "$(ENVTEST_DIR)" -manager bin/manager -n $(BENCH_SIZES) -rate 10 -resync 20s
	go run ./hack/bench -assets "$(ENVTEST_DIR)" -manager bin/manager -n $(BENCH_SIZES) -rate 0 -resync 20s -details

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary and the kubectl plugin.
	go build -o bin/manager ./cmd
	go build -o bin/kubectl-awskubeflowprofiles ./cmd/kubectl-awskubeflowprofiles

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of your kubeconfig.
	go run ./cmd

.PHONY: run-local
run-local: envtest build ## Start a local control plane and kumo, apply the sample and run the operator; Ctrl-C stops everything.
	go build -o bin/localenv ./hack/localenv
	bin/localenv run --assets "$(ENVTEST_DIR)" --manager bin/manager --sample config/samples/local.yaml

.PHONY: docker-build
docker-build: ## Build the manager image.
	docker build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the manager image.
	docker push $(IMG)

.PHONY: krew-manifest
KREW_RELEASE_URL ?=

krew-manifest: ## Build the kubectl plugin's release archives and its krew manifest (checked with krew's validator) into dist/krew for v$(VERSION).
	go run ./hack/krew -version v$(VERSION) -out dist/krew $(if $(KREW_RELEASE_URL),-release-url $(KREW_RELEASE_URL))

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml with the CRD and the deployment.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml

##@ OLM bundle

BUNDLE_IMG ?= ghcr.io/awskubeflowprofiles/operator-bundle:v$(VERSION)
CATALOG_IMG ?= ghcr.io/awskubeflowprofiles/operator-catalog:v$(VERSION)
CHANNELS ?= candidate
DEFAULT_CHANNEL ?= candidate
# The CSV's createdAt: fixed in the committed bundle, stamped by the release
# workflow with the time of the release.
BUNDLE_CREATED_AT ?= 2026-12-01T00:00:00Z
# The contact OperatorHub shows. A fork publishing its own bundle sets its own.
MAINTAINER ?= AwsKubeflowProfiles maintainers <maintainers@awskubeflowprofiles.dev>

.PHONY: bundle
bundle: manifests kustomize ## Generate the OLM bundle (bundle/, bundle.Dockerfile) and validate it.
	$(KUSTOMIZE) build config/manifests | go run ./hack/bundle -version $(VERSION) -image $(IMG) \
		-channels $(CHANNELS) -default-channel $(DEFAULT_CHANNEL) \
		-created-at "$(BUNDLE_CREATED_AT)" -maintainer "$(MAINTAINER)"
	go test ./hack/bundle/ -run TestCommittedBundleIsValid -count=1
	@if [ -n "$(OPERATOR_SDK)" ]; then $(OPERATOR_SDK) bundle validate ./bundle --select-optional name=operatorhub; \
	else echo "operator-sdk not found: validated with operator-framework/api only"; fi

.PHONY: catalog
catalog: opm ## Write the file-based catalog (catalog/, catalog.Dockerfile) for BUNDLE_IMG, which must be pushed.
	scripts/catalog.sh $(OPM) awskubeflowprofiles-operator $(DEFAULT_CHANNEL) $(BUNDLE_IMG) $(OPM_IMAGE) catalog

.PHONY: catalog-build
catalog-build: ## Build the catalog image.
	docker build -f catalog.Dockerfile -t $(CATALOG_IMG) .

.PHONY: community-operators
community-operators: ## Lay bundle/ out for a community-operators pull request in COMMUNITY_OPERATORS (a checkout of your fork), with REVIEWERS.
	scripts/community-operators.sh bundle "$(COMMUNITY_OPERATORS)" "$(REVIEWERS)"

.PHONY: bundle-build
bundle-build: ## Build the bundle image.
	docker build -f bundle.Dockerfile -t $(BUNDLE_IMG) .

.PHONY: bundle-push
bundle-push: ## Push the bundle image.
	docker push $(BUNDLE_IMG)

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install the CRD into the cluster of your kubeconfig.
	$(KUSTOMIZE) build config/crd | kubectl apply -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRD from the cluster of your kubeconfig.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator to the cluster of your kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator from the cluster of your kubeconfig.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Install kustomize into bin/.
$(KUSTOMIZE): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

.PHONY: actionlint
actionlint: $(ACTIONLINT) ## Install actionlint into bin/.
$(ACTIONLINT): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# opm is used by the release workflow only, downloaded from its release; its
# version is the one of the opm image pinned in e2e/kind/pins.env.
.PHONY: opm
opm: $(OPM) ## Download opm into bin/.
$(OPM): | $(LOCALBIN)
	curl -fsSL -o $(OPM).download https://github.com/operator-framework/operator-registry/releases/download/$(OPM_VERSION)/$(shell go env GOOS)-$(shell go env GOARCH)-opm
	chmod +x $(OPM).download
	mv $(OPM).download $(OPM)

.PHONY: setup-envtest
setup-envtest: $(SETUP_ENVTEST) ## Install setup-envtest into bin/.
$(SETUP_ENVTEST): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-runtime/tools/setup-envtest@$(SETUP_ENVTEST_VERSION)
