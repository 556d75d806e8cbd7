"""The frozen base network: import, its file format, and the OpenCL forward."""
