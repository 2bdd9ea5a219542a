"""sensors' logic: readings storage, retention, back-fill, outbound frames and the readings API's queries.

No other app imports these modules (sensors is used through its models, `protocol`, `outbox` and
`predictions`), so nothing is re-exported here: import from the module that owns the function.
"""

from __future__ import annotations
