//! Cross-component test suite; the tests live in tests/tests/.
