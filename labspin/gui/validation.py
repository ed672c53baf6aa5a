"""Checking the window's inputs: station, recipe with the edited parameters, dry run, output.

Errors are shown where they belong by their field, never by reading the message: a library
`FieldError` carries `key` ("sim", "hall_mode", "parameters.cycles", ...) and `field_widgets`
maps each key to the widget that edits it, which is outlined and gets the message under it.
"""
from __future__ import annotations

from PySide6 import QtWidgets

from labspin.errors import FieldError, OutputExists, UserError
from labspin.gui.field_text import parse_value, show_value
from labspin.gui.layout import mark_invalid, set_error
from labspin.outputs import check_output_file


class Validation:
    """MainWindow's input checks (a mixin: the widgets are built by `layout.build_ui`)."""

    def set_parameter(self, key: str, value) -> None:
        """Script/test access: type `value` into the field of parameter `key`, then validate."""
        if key not in self._fields:
            raise UserError(f"parameter {key!r}: not a parameter of this recipe")
        self._fields[key][0].setText(show_value(value))
        self.validate()

    def overrides(self) -> dict:
        """Parameters whose field differs from the recipe file's value (empty = the file's value)."""
        out = {}
        for key, (edit, _) in self._fields.items():
            v = parse_value(edit.text())
            if v is not None and v != self._defaults.get(key):
                out[key] = v
        return out

    def _schedule_validate(self, *_) -> None:
        self._validate_timer.start()

    def field_widgets(self) -> dict[str, QtWidgets.QWidget]:
        """Field key (as a FieldError names it) -> the widget that edits it."""
        out = {"sim": self.device_combo, "hall_mode": self.hall_combo,
               "station": self.station_file_edit, "output": self.output_edit,
               "overwrite": self.overwrite_box, "bus_log": self.bus_log_edit}
        out.update({f"parameters.{k}": edit for k, (edit, _) in self._fields.items()})
        return out

    def field_widget(self, key: str | None) -> QtWidgets.QWidget | None:
        """The widget of field ``key``; "parameters.amplitudes[3]" is the amplitudes field."""
        if key is None:
            return None
        return self.field_widgets().get(key.split("[")[0])

    def _station_spec(self):
        from labspin.station import load_station_spec, sim_station_spec
        if self.sim_radio.isChecked():
            return sim_station_spec(f"{self.device_combo.currentText()}:{self.seed_spin.value()}",
                                    hall_mode=self.hall_mode())
        path = self.station_file_edit.text().strip()
        if not path:
            raise FieldError("station", "no station file chosen")
        return load_station_spec(path)

    def validate(self) -> bool:
        """Re-check station, recipe (with overrides), dry run and output; enable Start accordingly."""
        self._validate_timer.stop()
        from labspin.protocols import load_recipe
        blocker = None
        for widget in self.field_widgets().values():
            mark_invalid(widget, False)
        # station
        try:
            self.spec = self._station_spec()
            set_error(self.station_error, None)
        except UserError as exc:
            self.spec = None
            set_error(self.station_error, str(exc))
            fallback = self.device_combo if self.sim_radio.isChecked() else self.station_file_edit
            mark_invalid(self.field_widget(exc.key) or fallback, True)
            blocker = "station: see the error above"
        # recipe
        for _, err in self._fields.values():
            set_error(err, None)
        set_error(self.recipe_error, None)
        self.recipe = None
        name = self.recipe_combo.currentData()
        if name is None:
            blocker = blocker or "no recipe chosen"
        else:
            try:
                self.recipe = load_recipe(name, self.overrides() or None)
            except UserError as exc:
                self.show_field_error(exc)
                blocker = blocker or "recipe: " + str(exc)
            except Exception as exc:  # a protocol bug must not kill validation: show it
                set_error(self.recipe_error, f"{type(exc).__name__}: {exc}")
                blocker = blocker or f"recipe: {type(exc).__name__}: {exc}"
        # dry run against the station limits
        self.dry_summary_ok = False
        if self.recipe is not None and self.spec is not None:
            from labspin.gui.dryrun_view import describe
            text, problem, per_field = describe(self.recipe, self.spec)
            self.dry_label.setText(text)
            for key, msg in per_field.items():
                if key in self._fields:
                    set_error(self._fields[key][1], msg)
                    mark_invalid(self._fields[key][0], True)
            self.dry_summary_ok = problem is None
            if problem:
                blocker = blocker or problem
        else:
            self.dry_label.setText("—")
        # output
        out = self.output_edit.text().strip()
        out_err = None
        if not out:
            out_err = "choose an output file"
        else:
            try:                                     # the one output rule (labspin.outputs)
                check_output_file(out, overwrite=self.overwrite_box.isChecked())
            except OutputExists:
                out_err = f"{out}: exists; choose another name or tick 'Overwrite'"
            except UserError as exc:
                out_err = str(exc)
        set_error(self.output_error, out_err)
        if out_err:
            mark_invalid(self.output_edit, True)
        blocker = blocker or (f"output: {out_err}" if out_err else None)
        self._blocker = blocker
        self._update_buttons()
        return blocker is None

    def show_field_error(self, exc: UserError) -> None:
        """Show a recipe error under the parameter its key names (else under the recipe box)."""
        key = exc.key or ""
        name = key.removeprefix("parameters.").split("[")[0] if key.startswith("parameters.") else None
        if name in self._fields:
            edit, err = self._fields[name]
            set_error(err, str(exc))
            mark_invalid(edit, True)
            return
        widget = self.field_widget(exc.key)
        if widget is not None:
            mark_invalid(widget, True)
        set_error(self.recipe_error, str(exc))
