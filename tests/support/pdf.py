"""A one-page PDF for the signing tests, written by pyHanko's own writer."""

from __future__ import annotations

import io

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PdfFileWriter


def minimal_pdf(text: str = "mynakit") -> bytes:
    """A one-page A4 PDF showing ``text`` in Helvetica; the tamper tests look for ``(text)``
    in the content stream."""
    writer = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )
    content = generic.StreamObject(
        stream_data=f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    )
    page = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Page"),
            pdf_name("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(value) for value in (0, 0, 595, 842)]
            ),
            pdf_name("/Contents"): writer.add_object(content),
            pdf_name("/Resources"): generic.DictionaryObject(
                {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})}
            ),
        }
    )
    writer.insert_page(page)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()
