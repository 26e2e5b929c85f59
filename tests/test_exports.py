"""
The public names: everything ``__all__`` lists exists, and the core's names are exported.
"""

from __future__ import annotations

import importlib

from twisted.trial.unittest import SynchronousTestCase

import txami

#: The core modules and what each must export (other modules are checked through __all__).
CORE = {
    "txami.message": {"Message", "encode_action", "new_action_id"},
    "txami.protocol": {"AMIProtocol"},
    "txami.dispatch": {"EventDispatcher", "EventHandler", "ReadEndHandler"},
    "txami.errors": {
        "TxamiError",
        "AMIError",
        "AuthenticationError",
        "OriginateError",
        "ActionTimeout",
        "ConnectionLost",
        "NotConnected",
        "ProtocolError",
    },
}

ERRORS = CORE["txami.errors"]


class ExportTests(SynchronousTestCase):
    """txami.__all__ and the core modules' __all__."""

    def test_every_name_in_all_exists(self) -> None:
        """Every name in txami.__all__ is an attribute of txami, listed once."""
        self.assertEqual(len(txami.__all__), len(set(txami.__all__)))
        for name in txami.__all__:
            self.assertTrue(hasattr(txami, name), name)

    def test_star_import(self) -> None:
        """'from txami import *' binds exactly the names in __all__."""
        namespace: dict[str, object] = {}
        exec("from txami import *", namespace)
        namespace.pop("__builtins__")
        self.assertEqual(set(namespace), set(txami.__all__))

    def test_core_names_exported(self) -> None:
        """The core API is importable from txami itself and is the submodules' own objects."""
        for module_name, names in CORE.items():
            module = importlib.import_module(module_name)
            for name in names:
                self.assertIn(name, module.__all__, f"{module_name}.{name}")
                if module_name != "txami.message" or name == "Message":
                    self.assertIn(name, txami.__all__, name)
                    self.assertIs(getattr(txami, name), getattr(module, name))

    def test_module_all_exists(self) -> None:
        """Every name in a txami module's __all__ exists in that module."""
        for module_name in (
            "txami.message",
            "txami.protocol",
            "txami.dispatch",
            "txami.errors",
            "txami.actions",
        ):
            module = importlib.import_module(module_name)
            for name in module.__all__:
                self.assertTrue(hasattr(module, name), f"{module_name}.{name}")

    def test_errors_share_a_base(self) -> None:
        """Every txami exception derives from TxamiError; the AMI ones from AMIError."""
        for name in ERRORS:
            self.assertTrue(issubclass(getattr(txami, name), txami.TxamiError), name)
        self.assertTrue(issubclass(txami.AuthenticationError, txami.AMIError))
        self.assertTrue(issubclass(txami.OriginateError, txami.AMIError))

    def test_version(self) -> None:
        """__version__ is a non-empty string."""
        self.assertIsInstance(txami.__version__, str)
        self.assertTrue(txami.__version__)
