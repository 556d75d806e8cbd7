"""The frozen base network: import, the seed format, and the OpenCL forward."""
