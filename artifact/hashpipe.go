package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// SHA-256 runs at about 1.2 GB/s on one core with the SHA extensions,
// slower than the copy it checks (a user-space file copy moves 2.5 GB/s
// or more): hashed inline, every artifact's write and read cost the sum
// of the two. A hashPipe hashes on a goroutine of its own instead, so
// the I/O of the next buffer overlaps the hashing of the last, and a
// stream costs the larger of the two.
//
// The stream's bytes go through hashBufs buffers of hashBufSize bytes,
// taken from a pool shared by every stream and given back when the pipe
// stops: a stream holds at most a few MiB, whatever its size. A stream
// shorter than one buffer never starts the goroutine: it is hashed
// inline, at Sum, as before.
const (
	hashBufSize = 1 << 20
	hashBufs    = 3
)

// hashBufPool holds the buffers of stopped pipes.
var hashBufPool = sync.Pool{New: func() any { return new([hashBufSize]byte) }}

// A hashPipe computes the SHA-256 of a stream of buffers on a goroutine,
// started with the first full buffer. Its owner takes empty buffers
// with get, fills them, and hands them over in stream order with hand;
// it may still read a buffer it handed over (to write it elsewhere)
// until its next get. The owner must call sum or stop exactly once,
// whatever happens: they end the goroutine and give the buffers back.
// A hashPipe is used by one goroutine.
type hashPipe struct {
	ctx  context.Context
	h    hash.Hash
	bufs []*[hashBufSize]byte // every buffer taken from the pool
	free chan []byte          // hashed buffers, to be filled again
	todo chan []byte          // handed-over buffers, to hash
	done chan struct{}        // closed when the goroutine returned
	run  bool                 // the goroutine was started
	over bool                 // sum or stop was called
}

// newHashPipe returns a pipe whose goroutine, once started, ends when
// ctx does, if the owner has not stopped it by then: a pipe never
// outlives the operation it serves.
func newHashPipe(ctx context.Context) *hashPipe {
	return &hashPipe{
		ctx:  ctx,
		h:    sha256.New(),
		free: make(chan []byte, hashBufs),
		todo: make(chan []byte, hashBufs),
		done: make(chan struct{}),
	}
}

// get returns an empty buffer of hashBufSize bytes (len 0). It waits for
// the goroutine to hash one when all are handed over, and fails only
// when the pipe's context ended first.
func (p *hashPipe) get() ([]byte, error) {
	select {
	case b := <-p.free:
		return b[:0], nil
	default:
	}
	if len(p.bufs) < hashBufs {
		b := hashBufPool.Get().(*[hashBufSize]byte)
		p.bufs = append(p.bufs, b)
		return b[:0], nil
	}
	select {
	case b := <-p.free:
		return b[:0], nil
	case <-p.done:
		return nil, p.ctx.Err()
	}
}

// hand passes b, the next bytes of the stream, a buffer from get, to be
// hashed.
func (p *hashPipe) hand(b []byte) {
	if len(b) == 0 {
		p.free <- b
		return
	}
	if !p.run {
		p.run = true
		go p.hash()
	}
	p.todo <- b // never blocks: there are no more buffers than room
}

func (p *hashPipe) hash() {
	defer close(p.done)
	for {
		select {
		case b, ok := <-p.todo:
			if !ok {
				return
			}
			p.h.Write(b)
			p.free <- b
		case <-p.ctx.Done():
			return
		}
	}
}

// sum hands over last, the end of the stream (a buffer from get, or
// nil), and returns "sha256:" and the hex digest of the whole stream,
// once hashed. It fails only when the pipe's context ended first. The
// pipe is stopped.
func (p *hashPipe) sum(last []byte) (string, error) {
	if !p.run {
		p.h.Write(last) // short stream: no goroutine for one buffer
	} else if len(last) > 0 {
		p.hand(last)
	}
	if p.run {
		close(p.todo)
		<-p.done
	}
	ctxErr := p.ctx.Err()
	complete := len(p.todo) == 0
	p.release()
	if !complete {
		return "", ctxErr
	}
	return "sha256:" + hex.EncodeToString(p.h.Sum(nil)), nil
}

// stop ends the goroutine, if any, without a digest, and gives the
// buffers back. It may be called after sum, and more than once.
func (p *hashPipe) stop() {
	if p.over {
		return
	}
	if p.run {
		close(p.todo)
		<-p.done
	}
	p.release()
}

// release gives the buffers back to the pool; the goroutine is over.
func (p *hashPipe) release() {
	p.over = true
	for _, b := range p.bufs {
		hashBufPool.Put(b)
	}
	p.bufs = nil
}
