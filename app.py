"""fastnst, the Space: upload a photo, click a painting in the gallery, get your photo painted in that style.

    python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change)

- Hardware: a GPU paints up to 4K with the full networks (kept loaded in the library's LRU), as many at once as its
  free memory holds; on ZeroGPU a photo, each webcam frame and each chunk of a video's frames borrow a GPU for one
  `spaces.GPU` call sized to it (fastnst.zerogpu), a video's decoding and encoding staying outside; a CPU paints
  about 1 MP with the light networks.
- Offline (HF_HUB_OFFLINE=1 or no network) the embedded gallery in styles/ still works; styles from the Hub
  then load only if they are already in the Hugging Face cache.
- Uploads reach our functions undecoded (`preprocess=False`): fastnst.load_image, with its decoder allow-list,
  decompression-bomb guard and EXIF handling, is the only code that opens them, so a bad file gets its
  one-sentence error instead of a Gradio processing error, and no upload ever starts an external program.
- The page lives in `space/`, one module per section; this file is its entry point. Nothing is done at import.
- What is kept on disk, and for how long: uploads and results in Gradio's cache are deleted an hour after they
  were made (`delete_cache`, checked every 10 minutes); a failed or cancelled fit is deleted at once; a finished
  fit stays FIT_KEEP_S (2 hours) for its visitor to paint with and publish, all fits together at most
  FITS_MAX_BYTES (space.uploads), and every fit this process made is deleted when it exits.
- Memory: keep_freed_memory makes the CPU reuse freed memory (fast), so a rare large picture would stay resident
  for good; after each painting, memory over FASTNST_MEMORY_CEILING_MB is handed back to the kernel
  (fastnst.device).
- Examples pair each example photo with a gallery style; a click shows that painting, computed on first use and
  then served from Gradio's example cache (`cache_mode="lazy"`: nothing is painted at start-up).
- API: `Client(url).predict(handle_file("photo.jpg"), "starry-night", 1.0, False, 1024, api_name="/stylize")`.
- "Make a style from your painting": `training.fit` runs `python -m training --from styles/family` in a niced child
  process (one fit at a time, queued; cancel kills it at once), previews it on the visitor's photo as it learns
  and adds the result to the visitor's gallery; `/fit_style` is the same as an API, `/publish_style` pushes it to
  the Hub under the visitor's account (Hugging Face login on a Space, a token field elsewhere).
"""
from space.demo import build_demo, main

__all__ = ["build_demo", "main"]

if __name__ == "__main__":
    main()
