"""One error type for bad input, rendered as one line that names the file and the field."""


class InputError(Exception):
    """Bad input (plan, desired state, flag): exit code 2, nothing executed.

    `source` is the file (or `arguments` for flags), `field` the dotted path inside it.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(f"{source}: {field}: {message}")
        self.source = source
        self.field = field
        self.message = message
