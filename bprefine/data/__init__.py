"""Readers and writers: images, PNG masks, COCO instance results."""
