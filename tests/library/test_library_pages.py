"""The library page: the tree, search as you type (HTMX fragment), the no-JavaScript upload, deletes."""

from tests.support.corpus import BAD
from tests.support.library import new_student, pdf_bytes


async def test_the_page_shows_the_tree_with_file_details(client):
    ada = await new_student(client)
    result = await ada.upload_one(
        ("Chapter 1.pdf", pdf_bytes("c1")), semester="Y3S2", subject="NLP", book="NLTK_Book"
    )
    page = await ada.get("/library")
    assert page.status_code == 200
    for text in ("Y3S2", "NLP", "NLTK_Book", "Chapter 1.pdf", "queued", f"/files/{result['id']}/content"):
        assert text in page.text
    assert "Your library is empty" not in page.text
    # The folder pickers offer existing names.
    assert '<option value="NLTK_Book">' in page.text


async def test_search_as_you_type_returns_only_the_tree(client):
    ada = await new_student(client)
    await ada.upload_one(("Chapter 1.pdf", pdf_bytes("c1")), book="NLTK_Book")
    await ada.upload_one(("forallx.pdf", pdf_bytes("fx")), book="forall_x")
    fragment = await ada.get(
        "/library", params={"q": "chapter"}, headers={"HX-Request": "true", "HX-Target": "library-tree"}
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="library-tree"')
    assert "<html" not in fragment.text
    assert "Chapter 1.pdf" in fragment.text and "forallx.pdf" not in fragment.text
    nothing = await ada.get(
        "/library", params={"q": "zzz"}, headers={"HX-Request": "true", "HX-Target": "library-tree"}
    )
    assert "Nothing matches" in nothing.text


async def test_upload_form_works_without_javascript(client):
    ada = await new_student(client)
    response = await client.post(
        "/library/upload",
        headers=ada.headers,
        data={"semester": "Y1", "subject": "Logic", "book": "forallx"},
        files=[
            ("file", ("good.pdf", pdf_bytes("good"), "application/pdf")),
            ("file", ("image.pdf", (BAD / "png_renamed.pdf").read_bytes(), "application/pdf")),
        ],
    )
    assert response.status_code == 200
    assert "good.pdf — added" in response.text
    assert "image.pdf — This is not a PDF file" in response.text
    bad_folder = await client.post(
        "/library/upload",
        headers=ada.headers,
        data={"semester": "../etc", "subject": "Logic", "book": "forallx"},
        files=[("file", ("good.pdf", pdf_bytes("x"), "application/pdf"))],
    )
    assert bad_folder.status_code == 400
    assert "The semester name must be" in bad_folder.text
    assert 'value="../etc"' in bad_folder.text  # what was typed is kept


async def test_deleting_from_the_page_returns_the_updated_tree(client, app):
    ada = await new_student(client)
    keep = await ada.upload_one(("keep.pdf", pdf_bytes("keep")))
    drop = await ada.upload_one(("drop.pdf", pdf_bytes("drop")))
    htmx = {"HX-Request": "true", "HX-Target": "library-tree"}
    response = await ada.delete(f"/library/files/{drop['id']}", headers=htmx)
    assert response.status_code == 200
    assert "keep.pdf" in response.text and "drop.pdf" not in response.text
    assert not await app.state.storage.exists(drop["key"])

    response = await ada.delete("/library/folders", params={"semester": "Y1S1"}, headers=htmx)
    assert "Your library is empty" in response.text
    assert not await app.state.storage.exists(keep["key"])


async def test_scan_library_button_reports_what_it_found(client, app):
    import io

    ada = await new_student(client)
    key = f"users/{ada.id}/raw_data/Y1/Logic/forallx/placed.pdf"
    await app.state.storage.put(key, io.BytesIO(pdf_bytes("placed")), content_type="application/pdf")
    response = await client.post(
        "/library/scan", headers={**ada.headers, "HX-Request": "true", "HX-Target": "library-tree"}
    )
    assert response.status_code == 200
    assert "Scan complete: 1 new file found, 1 queued for ingestion." in response.text
    assert "placed.pdf" in response.text
    again = await client.post(
        "/library/scan", headers={**ada.headers, "HX-Request": "true", "HX-Target": "library-tree"}
    )
    assert "Scan complete: 0 new files found, 0 queued for ingestion." in again.text


async def test_an_htmx_error_shows_as_a_banner_not_as_a_page_inside_the_tree(client):
    ada = await new_student(client)
    bob = await new_student(client, "Bob")
    kept = await ada.upload_one(("kept.pdf", pdf_bytes("kept")))
    htmx = {"HX-Request": "true", "HX-Target": "library-tree"}

    # Bob's delete of Ada's file, sent by the page as Ada's would be: refused, and answered with the
    # banner's alert alone, put where the page shows errors rather than over Bob's tree.
    refused = await bob.delete(f"/library/files/{kept['id']}", headers=htmx)
    assert refused.status_code == 404
    assert refused.headers["HX-Retarget"] == "#htmx-error"
    assert refused.headers["HX-Reswap"] == "innerHTML"
    assert refused.text == '<p class="alert error" role="alert">No such file in your library.</p>'
    assert "<html" not in refused.text and "topbar" not in refused.text
    assert "kept.pdf" in (await ada.get("/library")).text

    # The page has the banner's place; a boosted link swaps the whole body, so it gets the whole page.
    assert '<div id="htmx-error" aria-live="assertive"></div>' in (await bob.get("/library")).text
    boosted = await bob.get("/no/such/page", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert boosted.status_code == 404 and "<html" in boosted.text and "HX-Retarget" not in boosted.headers
