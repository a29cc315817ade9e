"""A sketch of heading-aware chunking, for readers who think in Python."""


def chunk(text: str, size: int = 1000, overlap: int = 200) -> list[str]:
    """Cut text into pieces of at most `size` characters overlapping by `overlap`."""
    pieces = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        pieces.append(text[start:end])
        if end == len(text):
            break
        start = end - overlap
    return pieces
