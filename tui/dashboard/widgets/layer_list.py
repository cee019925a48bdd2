"""The layer list: every layer with its shape and FLOPs at the current batch."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from partui.kernels.model.layers import LAYERS
from partui.tui.text.table import flops_text


class LayerList(OptionList):
    """Every layer with its shape and FLOPs at the current batch.

    The chosen layer is the app's state, not this widget's: the list only shows it.
    A user key or click posts `Chosen`; redraws, resizes and refills post nothing,
    so nothing but the user can move the selection.
    """

    BORDER_TITLE = "layers"

    class Chosen(Message):
        """The user picked a layer (a key or a click)."""

        def __init__(self, layer: str) -> None:
            super().__init__()
            self.layer = layer

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._filled: tuple | None = None  # (batch, selected, compact) drawn
        self._pending: list[str] = []  # layers chosen by keys, not yet taken by the app

    def fill(self, batch: int, selected: str) -> None:
        """Show every layer at `batch`, with `selected` highlighted (or the last layer chosen
        by a key the app has not taken yet: keys typed ahead are never rewound)."""
        if self._pending:
            selected = self._pending[-1]
        compact = bool(self.size.width) and self.size.width < 40  # no room for the shapes
        if self._filled and self._filled[:1] + self._filled[2:] == (batch, compact):
            self._filled = (batch, selected, compact)
            self._highlight(selected)
            return
        self._filled = (batch, selected, compact)
        self.clear_options()
        for name, layer in LAYERS.items():
            shape = layer.shape_text().replace(" -> ", "→")
            flops = flops_text(layer.flops(batch)).replace("FLOP", "F")
            label = (
                Text.assemble((f"{name:<10}", "bold"))
                if compact
                else Text.assemble(
                    (f"{name:<10}", "bold"), f" {shape:<19}", (f" {flops:>8}", "dim")
                )
            )
            self.add_option(Option(label, id=name))
        self._highlight(selected)

    def _highlight(self, name: str) -> None:
        names = list(LAYERS)
        index = names.index(name) if name in names else None
        if self.highlighted != index:
            self.highlighted = index

    def on_resize(self) -> None:
        if self._filled:
            batch, selected, _ = self._filled
            self._filled = None  # the width may call for the other form
            self.fill(batch, selected)

    # -- user moves: from the layer shown, never wrapping past either end ------
    def _step(self, step: int) -> None:
        names = list(LAYERS)
        current = self._filled[1] if self._filled else names[0]
        i = names.index(current) if current in names else 0
        chosen = names[max(0, min(len(names) - 1, i + step))]
        # shown at once, so that the next key (held down, or typed ahead) moves on from it
        # before the app has taken this one; the app puts it back if it refuses
        self._filled = (self._filled[0], chosen, self._filled[2]) if self._filled else None
        self._highlight(chosen)
        self._pending.append(chosen)
        self.post_message(self.Chosen(chosen))

    def settled(self, layer: str, taken: bool) -> None:
        """The app took (or refused) the choice `layer`: it is no longer pending."""
        if layer in self._pending:
            del self._pending[: self._pending.index(layer) + 1]
        if not taken:
            self._pending.clear()

    def action_cursor_up(self) -> None:
        self._step(-1)

    def action_cursor_down(self) -> None:
        self._step(1)

    def action_first(self) -> None:
        self._step(-len(LAYERS))

    def action_last(self) -> None:
        self._step(len(LAYERS))

    def action_page_up(self) -> None:
        self._step(-max(1, self.scrollable_content_region.height - 1))

    def action_page_down(self) -> None:
        self._step(max(1, self.scrollable_content_region.height - 1))

    def action_select(self) -> None:  # enter, or a click (which highlights first)
        if self.highlighted is not None:
            chosen = self.get_option_at_index(self.highlighted).id
            if chosen is None:
                return
            self._pending.append(chosen)
            self.post_message(self.Chosen(chosen))
