"""The paper's 2D figure: its targets, their titles, its KL numbers and its image files.

Plain constants (no imports), shared by the figure, the benchmarks and the README's tables.
"""

FIGURE_TARGETS = ("spiral", "blur_circles", "qr", "words")
TITLES = {"spiral": "spiral", "blur_circles": "blur circles", "qr": "QR code", "words": "words"}
# The paper's figure (K = 10,000, 100 x 100 bins): gradient descent, Split-and-Prune, real samples.
PAPER_KL = {
    "spiral": {"gd": 20.19, "sp": 0.11, "real": 0.21},
    "blur_circles": {"gd": 30.34, "sp": 0.14, "real": 0.24},
    "qr": {"gd": 15.79, "sp": 0.12, "real": 0.29},
    "words": {"gd": 29.36, "sp": 0.05, "real": 0.16},
}
# File names of the paper's target images in the reference package (blur circles is drawn
# procedurally there too, so our procedural one stands in for it).
PAPER_IMAGES = {
    "spiral": ("sprial.png", "spiral.png"),
    "qr": ("QR_code.png",),
    "words": ("words.png",),
}
