/* wsg_queue: MPSC FIFO of intrusive nodes (see wsg_queue.h). */
#include "wsg_queue.h"

int wsg_queue_init(wsg_queue *q)
{
    q->head = q->tail = NULL;
    q->len = 0;
    return pthread_mutex_init(&q->lock, NULL) == 0 ? 0 : -1;
}

void wsg_queue_destroy(wsg_queue *q)
{
    pthread_mutex_destroy(&q->lock);
}

size_t wsg_queue_push(wsg_queue *q, wsg_qnode *n)
{
    n->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    size_t len = ++q->len;
    pthread_mutex_unlock(&q->lock);
    return len;
}

wsg_qnode *wsg_queue_take_all(wsg_queue *q)
{
    pthread_mutex_lock(&q->lock);
    wsg_qnode *h = q->head;
    q->head = q->tail = NULL;
    q->len = 0;
    pthread_mutex_unlock(&q->lock);
    return h;
}

size_t wsg_queue_len(wsg_queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t len = q->len;
    pthread_mutex_unlock(&q->lock);
    return len;
}
