"""The MLflow model registry, seen through bundle identities.

`export` registers the candidate's MLflow model and tags the version with the sha256 of its
model.onnx, so a version and a bundle match exactly (a `ModelIdentity`). The `champion` alias
names the served model.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ..bundle import ModelIdentity
from ..config import CHAMPION_ALIAS
from ..tracking import tracking_errors

BUNDLE_SHA256_TAG = "bundle_sha256"


def register(
    client: MlflowClient, name: str, run_id: str, source: str, sha256: str, experiment: str | None
) -> ModelIdentity:
    """The registry version of a run's model, created unless the same bundle is registered."""
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
            # A tracking server accepts a `models:/<model id>` source only with that id.
            model_id = source.removeprefix("models:/") if source.startswith("models:/m-") else None
            version = client.create_model_version(name, source, run_id, model_id=model_id)
        tags = {BUNDLE_SHA256_TAG: sha256, **({"experiment": experiment} if experiment else {})}
        for key, value in tags.items():
            client.set_model_version_tag(name, version.version, key, value)
    return ModelIdentity(
        registered_model=name, version=int(version.version), run_id=run_id, sha256=sha256
    )


def unless_missing(lookup):
    """`lookup()`, or None when the registry has no such model, version or alias."""
    with tracking_errors():
        try:
            return lookup()
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise


def identity_of(client: MlflowClient, name: str, version: int | str) -> ModelIdentity | None:
    """The identity of a registered version, None if there is none or it has no bundle."""
    found = unless_missing(lambda: client.get_model_version(name, str(version)))
    sha256 = found.tags.get(BUNDLE_SHA256_TAG) if found else None
    if not sha256 or not found.run_id:
        return None
    return ModelIdentity(
        registered_model=name, version=int(found.version), run_id=found.run_id, sha256=sha256
    )


def champion(client: MlflowClient, name: str) -> ModelIdentity | None:
    """The identity of the version that holds the champion alias, None if none does."""
    model = unless_missing(lambda: client.get_registered_model(name))
    version = model.aliases.get(CHAMPION_ALIAS) if model else None
    return None if version is None else identity_of(client, name, version)


def is_registered(client: MlflowClient, identity: ModelIdentity) -> bool:
    """Whether this registry holds exactly this model (same version, run and hash)."""
    return identity_of(client, identity.registered_model, identity.version) == identity


def set_champion(client: MlflowClient, identity: ModelIdentity) -> None:
    with tracking_errors():
        client.set_registered_model_alias(
            identity.registered_model, CHAMPION_ALIAS, str(identity.version)
        )
