"""Writers of small synthetic input files for the I/O tests (SDF stacks, I0 files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _points(vals, per_line=7) -> str:
    """A counted list '(N, v, v, ...)' wrapped over several lines like the beamline software does."""
    items = [str(len(vals))] + [f"{v:.3f}" for v in vals]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "(" + ",\n\t\t".join(lines) + ")"


def write_sdf(folder: Path, name: str, images: list[np.ndarray], energies, *, ys=None, xs=None,
              channels=("counter1",)) -> Path:
    """Write NAME.hdr and the .xim files of a (multi-region) stack.

    images[k] has shape (ny_k, nx_k, n_energy) in *file row order*; ys[k]/xs[k]
    are the QAxis/PAxis points listed in the header (default increasing).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    energies = np.asarray(energies, dtype=float)
    regs = []
    for k, img in enumerate(images):
        ny, nx, _ = img.shape
        y = np.asarray(ys[k]) if ys else 10.0 + 0.1 * np.arange(ny)
        x = np.asarray(xs[k]) if xs else -5.0 + 0.1 * np.arange(nx)
        regs.append("{\n\t\tPAxis = { Name = \"Sample X\"; Unit = \"um\"; Min = %g; Max = %g; Dir = 1;\n\t\t\tPoints = %s;\n};\n"
                    "\t\tQAxis = { Name = \"Sample Y\"; Unit = \"um\"; Min = %g; Max = %g; Dir = 1;\n\t\t\tPoints = %s;\n};\n}"
                    % (x.min(), x.max(), _points(x), y.min(), y.max(), _points(y)))
    chans = ",\n".join('{ Name = "%s"; Unit = "counts";}' % c for c in channels)
    text = ('ScanDefinition = { Label = "%s.hdr"; Type = "NEXAFS Image Scan"; Flags = "Image Stack"; Dwell = 1;\n'
            "\tRegions = (%d,\n%s);\n\n"
            '\tStackAxis = { Name = "Energy"; Unit = "eV"; Min = %g; Max = %g; Dir = 1;\n\t\tPoints = %s;\n};\n\n'
            "\tChannels = (%d,\n%s);\n};\n"
            ' Time = "2026 December 3 12:00:00"; BeamFeedback = true; Comment = "a; {tricky} (string)";\n'
            "Image001 = {StorageRingCurrent = 300.5; Time = \"x\";};\n"
            % (name, len(images), ",\n".join(regs), energies.min(), energies.max(), _points(energies),
               len(channels), chans))
    hdr = folder / f"{name}.hdr"
    hdr.write_text(text)
    for k, img in enumerate(images):
        for j in range(img.shape[2]):
            suffix = f"_r{k}" if len(images) > 1 else ""
            np.savetxt(folder / f"{name}_a{j:03d}{suffix}.xim", img[:, :, j], fmt="%.6f", delimiter="\t")
    return hdr


def write_i0(path: Path, energies, counts) -> Path:
    np.savetxt(path, np.column_stack([energies, counts]), fmt="%.7E")
    return Path(path)


def small_stack(ny=5, nx=7, ne=9, seed=0):
    """Positive transmitted counts (ny, nx, ne), uneven energies, and an I0 spectrum."""
    rng = np.random.default_rng(seed)
    e = 700.0 + np.cumsum(np.r_[0.0, np.where(np.arange(ne - 1) < ne // 2, 0.375, 0.202)])
    i0 = 900.0 + 10.0 * np.arange(ne)
    I = i0[None, None, :] * np.exp(-rng.uniform(0.1, 1.5, size=(ny, nx, ne)))
    return I, e, i0
