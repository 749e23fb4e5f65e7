"""A development and test emulator of ServiceNow's REST Table API.

NOT a ServiceNow. It implements the part of the Table API that AF-assistenten
uses, faithfully enough that the client cannot tell the difference: create,
read one, list with encoded queries, PATCH, Basic auth and OAuth
(``/oauth_token.do``), ServiceNow's status codes and error envelopes, and
fault injection at run time (``/_emulator/faults``).

Start it with ``python -m servicenow_emulator``. See ``docs/servicenow.md``.
"""
