"""A recording admission webhook server: it stands in for istiod's webhook endpoints in tests.

Pods do not run on the local cluster, so istiod cannot answer `/inject` or `/validate`. The API
server runs on this host and can call a webhook URL on loopback, so tests point the charts'
webhooks at an `AdmissionRecorder` and assert which objects the real API server sends to which
path. It allows everything unless a test adds a deny rule. It is not istiod and does not imitate its
answers: the one change it makes is to mark a Pod it is asked to inject with INJECTED_BY (where it was
asked), which the local cluster's kwok stage (data/kwok/uninjected-pod-stage.yaml) requires before a pod
with an `image: auto` container may become Ready, as an injected pod's image would be pullable.

One module per job: `authority` (the throwaway CA and the TLS contexts it signs), `server` (the HTTPS endpoint
that reads and answers AdmissionReviews), `recorder` (what tests use: `AdmissionRecorder`, `AdmissionRequest`,
`where`), `webhooks` (trusting the recorder in the cluster: `patch_ca_bundle`, `adopt_stale_webhooks`).
"""

from meshcharts.testing.admission.recorder import (
    HOST,
    AdmissionRecorder,
    AdmissionRequest,
    Predicate,
    RecorderError,
    RequestFields,
    where,
)
from meshcharts.testing.admission.server import INJECTED_BY
from meshcharts.testing.admission.webhooks import adopt_stale_webhooks, patch_ca_bundle

__all__ = [
    "HOST",
    "INJECTED_BY",
    "AdmissionRecorder",
    "AdmissionRequest",
    "Predicate",
    "RecorderError",
    "RequestFields",
    "adopt_stale_webhooks",
    "patch_ca_bundle",
    "where",
]
