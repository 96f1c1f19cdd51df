"""The MLflow model registry, seen through bundle identities.

A registered version is the scikit-learn model that `train` logged; `export` registers it and tags
it with the sha256 of its ONNX bundle, so a version and a bundle can be matched exactly: same
name, version, run id and hash (a `ModelIdentity`). The `champion` alias names the served model.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ..bundle import ModelIdentity
from ..config import CHAMPION_ALIAS
from ..tracking import tracking_errors

# The version tag that holds the sha256 of the version's model.onnx.
BUNDLE_SHA256_TAG = "bundle_sha256"


def missing(error: MlflowException) -> bool:
    return error.error_code == "RESOURCE_DOES_NOT_EXIST"


def register(
    client: MlflowClient, name: str, run_id: str, source: str, sha256: str, tags: dict[str, str]
) -> ModelIdentity:
    """The registry version of a run's model, created unless that run's model is registered."""
    with tracking_errors():
        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        for existing in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
            if existing.source == source and existing.tags.get(BUNDLE_SHA256_TAG) == sha256:
                version = existing  # the same bundle exported again: no duplicate version
                break
        else:
            # A tracking server accepts a logged model's `models:/<model id>` source only with
            # that id (a local store does not check).
            model_id = source.removeprefix("models:/") if source.startswith("models:/m-") else None
            version = client.create_model_version(name, source, run_id=run_id, model_id=model_id)
        for key, value in {**tags, BUNDLE_SHA256_TAG: sha256}.items():
            client.set_model_version_tag(name, version.version, key, value)
    return ModelIdentity(
        registered_model=name, version=int(version.version), run_id=run_id, sha256=sha256
    )


def identity_of(client: MlflowClient, name: str, version: int | str) -> ModelIdentity | None:
    """The identity of a registered version, None if the registry has no such version."""
    with tracking_errors():
        try:
            found = client.get_model_version(name, str(version))
        except MlflowException as error:
            if missing(error):
                return None
            raise
    sha256 = found.tags.get(BUNDLE_SHA256_TAG)
    if not sha256 or not found.run_id:
        return None  # registered by hand, without a bundle
    return ModelIdentity(
        registered_model=name, version=int(found.version), run_id=found.run_id, sha256=sha256
    )


def champion(client: MlflowClient, name: str) -> ModelIdentity | None:
    """The identity of the version that holds the champion alias, None if none does."""
    with tracking_errors():
        try:
            version = client.get_registered_model(name).aliases.get(CHAMPION_ALIAS)
        except MlflowException as error:
            if missing(error):
                return None
            raise
    return None if version is None else identity_of(client, name, version)


def is_registered(client: MlflowClient, identity: ModelIdentity) -> bool:
    """Whether this registry holds exactly this model (same version, run and hash)."""
    return identity_of(client, identity.registered_model, identity.version) == identity


def set_champion(client: MlflowClient, identity: ModelIdentity) -> None:
    with tracking_errors():
        client.set_registered_model_alias(
            identity.registered_model, CHAMPION_ALIAS, str(identity.version)
        )
