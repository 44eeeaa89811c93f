"""The Space's page, one module per section: `photo` (a photo painted in a gallery style; styles from the Hub),
`fit` (a style from the visitor's painting, published to the Hub), `live` (the webcam), `video` (a video file).
`settings` says what this machine may do, `uploads` reads visitors' files and deletes what the Space wrote,
`common` holds what the sections share, and `demo` assembles the page (`build_demo`) and starts it (`main`).

Nothing is done at import: `main()` reads the settings, paints missing thumbnails, asks the Hub for community styles,
warms up the default style and launches, so that tests can import the handlers directly.
"""
