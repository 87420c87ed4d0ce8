import CLatentSupport

/// Hands memory freed by a departed client back to the operating system. glibc keeps freed heap memory
/// for reuse, so without this RSS stays at its peak after a client that made the server hold large
/// buffers disconnects.
enum ReturnMemory {
    static func toSystem() { _ = latent_malloc_trim() }
}
