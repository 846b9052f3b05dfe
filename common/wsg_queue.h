/* wsg_queue: a multi-producer, single-consumer FIFO of intrusive nodes, the one way work
 * crosses threads in wsgate (nats.c callback threads -> an event loop). Producers push under a
 * mutex and then wake the consumer's loop themselves (lws_cancel_service); the consumer takes
 * everything queued in one call and walks it without holding the lock. */
#ifndef WSG_QUEUE_H
#define WSG_QUEUE_H
#include <pthread.h>
#include <stddef.h>

typedef struct wsg_qnode {
    struct wsg_qnode *next;
} wsg_qnode;

typedef struct wsg_queue {
    pthread_mutex_t lock;
    wsg_qnode *head;
    wsg_qnode *tail;
    size_t len;
} wsg_queue;

int wsg_queue_init(wsg_queue *q);
void wsg_queue_destroy(wsg_queue *q);  /* the queue must be empty */
/* Returns the queue length after the push. */
size_t wsg_queue_push(wsg_queue *q, wsg_qnode *n);
/* Takes every queued node, oldest first, as a NULL-terminated list. */
wsg_qnode *wsg_queue_take_all(wsg_queue *q);
size_t wsg_queue_len(wsg_queue *q);

#define wsg_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
